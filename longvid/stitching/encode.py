"""A streaming MP4 writer on the ffmpeg that imageio-ffmpeg ships: H.264, yuv420p, +faststart.

Frames go to ffmpeg as they arrive. The file is written under a temporary name beside the target and renamed
only when complete, so the output path never holds half a video.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from longvid.cache import publish, temp_beside

SMALL_HEIGHT = 256
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


class Mp4Writer:
    """Context manager: ``with Mp4Writer(path, w, h, fps) as out: out.write(frame)``.

    Args:
        path: the final .mp4 path.
        width, height: frame size; even numbers (yuv420p), multiples of 16 for storyboards.
        fps: frames per second (fractional rates are kept exact).
        crf: x264 constant rate factor, 0 (lossless) to 51; 18 is visually lossless.
        preset: x264 speed preset.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, *, crf: int = 18, preset: str = "medium"):
        if not 0 <= crf <= 51:
            raise ValueError(f"`crf` ({crf}) must be between 0 and 51")
        if preset not in PRESETS:
            raise ValueError(f"`preset` ({preset!r}) must be one of {', '.join(PRESETS)}")
        self.path = Path(path)
        self.size = (width, height)
        self.fps = video_rate(fps)
        self.crf, self.preset = crf, preset
        self.frames = 0
        self._tmp: Path | None = None
        self._gen = None

    def __enter__(self) -> Mp4Writer:
        import imageio_ffmpeg

        self._started = time.time()
        # x264's frame threads are not repeatable on very short frames (seen at 96 px: a few frames of one render
        # in ten came out different); such frames are cheap, so they encode on one thread and stay bit-identical.
        threads = ["-threads", "1"] if self.size[1] < SMALL_HEIGHT else []
        self._tmp = temp_beside(self.path, ".mp4")
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp),
            self.size,
            fps=self.fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=None,
            macro_block_size=2,  # storyboards are multiples of 16; other videos only need even sizes
            ffmpeg_log_level="error",
            output_params=["-crf", str(self.crf), "-preset", self.preset, *threads, "-movflags", "+faststart", "-f", "mp4"],
        )
        self._gen.send(None)
        return self

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.size[1], self.size[0], 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame {self.frames} is {frame.shape} {frame.dtype}, expected "
                             f"({self.size[1]}, {self.size[0]}, 3) uint8")
        self._gen.send(np.ascontiguousarray(frame))
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._gen.close()
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)
            return
        publish(self._tmp, self.path)
        # Renders of this output that were killed mid-encode leave their partial files behind; sweep them.
        for stale in self.path.parent.glob(f".{self.path.stem}.*.partial.mp4"):
            if stale.stat().st_mtime < self._started:
                stale.unlink(missing_ok=True)


def video_rate(fps: float) -> Fraction:
    """The exact rate for ffmpeg; 23.976, 29.97 and 59.94 mean the NTSC rates 24000/1001 and so on."""
    for base in (24, 30, 48, 60, 120):
        ntsc = Fraction(base * 1000, 1001)
        if abs(fps - float(ntsc)) < 0.001:
            return ntsc
    return Fraction(fps).limit_denominator(1000)
