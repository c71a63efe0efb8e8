"""The soundtrack: sources placed on the timeline and summed block by block (`mix`), then levelled to a loudness
with ffmpeg's two-pass loudnorm (`loudness`)."""
