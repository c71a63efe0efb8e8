"""Mixing a long soundtrack: time and peak memory of `longvid render --audio-only`, against ffmpeg doing the same
mix alone.

The storyboard: `--minutes` of 10-second shots at 24 fps, a music bed under all of it (one file as long as the
video, faded in and out), a sound on every shot (four 12-second files, trimmed to their shots, a 0.5 s crossfade
at every fifth cut), a 3-second voice line in every other shot (the music ducked 12 dB under each), levelled to
-14 LUFS with a -1 dBTP ceiling. longvid runs only the mix task (no frame is drawn), in a fresh process and an
empty cache.

ffmpeg alone: one filter graph with the same sources, gains, placements (adelay), trims and fades, the music's
ducking as `volume` with an `enable` window per line, summed by `amix` (normalize=0), then the same two `loudnorm`
passes. Peak memory is the summed RSS of each command's process tree, sampled every 50 ms (`benchmarks.engine`).

    python benchmarks/audio_mix.py                  # 1 and 10 minutes
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from benchmarks.engine import ROOT, run

RATE = 48000
SHOT = 10.0


def write_wav(path: Path, seconds: float, hz: float, seed: int) -> None:
    """A tone under noise, 16-bit stereo, written in pieces (a 10-minute file never sits in memory)."""
    rng = np.random.default_rng(seed)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        for start in range(0, round(seconds * RATE), RATE * 10):
            n = min(RATE * 10, round(seconds * RATE) - start)
            t = (start + np.arange(n)) / RATE
            x = 0.2 * np.sin(2 * np.pi * hz * t) + 0.05 * rng.standard_normal(n)
            w.writeframes((np.stack([x, x]).T * 32767).astype("<i2").tobytes())


def storyboard(minutes: float) -> tuple[str, int]:
    shots = round(minutes * 60 / SHOT)
    lines = ["fps: 24", "width: 64", "height: 64", "audio:", "  music: {file: music.wav, gain_db: -8, fade_in: 1.0, "
             "fade_out: 2.0}", "  loudness: -14", "shots:"]
    for i in range(shots):
        fade = ", transition: {type: crossfade, duration: 0.5}" if i % 5 == 4 and i + 1 < shots else ""
        voice = ", voice: [{file: line.wav, at: 2.0}]" if i % 2 else ""
        lines.append(f"  - {{id: s{i}, prompt: shot {i}, duration: {SHOT}, sound: {{file: fx{i % 4}.wav}}{voice}{fade}}}")
    return "\n".join(lines) + "\n", shots


def ffmpeg_alone(folder: Path, minutes: float, shots: int) -> list[list[str]]:
    """The same mix as one ffmpeg filter graph, then loudnorm's two passes (the commands, in order)."""
    total = minutes * 60
    names = ["music.wav", *[f"fx{i}.wav" for i in range(4)], "line.wav"]
    inputs = [a for name in names for a in ("-i", str(folder / name))]
    voices = [(i * SHOT + 2.0, i * SHOT + 5.0) for i in range(shots) if i % 2]
    duck = ",".join(f"volume=enable='between(t,{a},{b})':volume=0.251" for a, b in voices)
    parts = [f"[0:a]volume=-8dB,afade=t=in:d=1,afade=t=out:st={total - 2}:d=2,{duck},atrim=0:{total}[m]"]
    labels = ["[m]"]
    for i in range(shots):
        parts.append(f"[{1 + i % 4}:a]atrim=0:{SHOT},afade=t=in:d=0.25,afade=t=out:st={SHOT - 0.25}:d=0.25,"
                     f"adelay={int(i * SHOT * 1000)}:all=1[s{i}]")
        labels.append(f"[s{i}]")
    line_split = [f"[5:a]asplit={len(voices)}" + "".join(f"[v{k}]" for k in range(len(voices)))]
    for k, (a, _) in enumerate(voices):
        parts.append(f"[v{k}]adelay={int(a * 1000)}:all=1[w{k}]")
        labels.append(f"[w{k}]")
    graph = ";".join(line_split + parts + ["".join(labels) + f"amix=inputs={len(labels)}:normalize=0:duration=first,"
                                           f"atrim=0:{total}[out]"])
    (folder / "graph.txt").write_text(graph)
    ff = imageio_ffmpeg.get_ffmpeg_exe()
    mix = [ff, "-y", "-v", "error", *inputs, "-/filter_complex", str(folder / "graph.txt"), "-map", "[out]",
           "-c:a", "flac", str(folder / "mixed.flac")]
    measure = [ff, "-y", "-v", "error", "-i", str(folder / "mixed.flac"), "-af", "loudnorm=I=-14:TP=-1:LRA=50:print_format=json",
               "-f", "null", "-"]
    # the second pass takes the first's figures; they change its work little, so fixed ones keep this a command
    apply = [ff, "-y", "-v", "error", "-i", str(folder / "mixed.flac"), "-af", "loudnorm=I=-14:TP=-1:LRA=50:measured_I=-20:"
             "measured_TP=-3:measured_LRA=5:measured_thresh=-30:linear=true,aresample=48000", "-c:a", "flac",
             "-sample_fmt", "s32", str(folder / "final.flac")]
    return [mix, measure, apply]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "audio_mix")
    args = parser.parse_args()
    results = {}
    for minutes in args.minutes:
        folder = args.out / f"{minutes:g}min"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        write_wav(folder / "music.wav", minutes * 60, 110, 0)
        for i in range(4):
            write_wav(folder / f"fx{i}.wav", 12.0, 440 * (i + 1), i + 1)
        write_wav(folder / "line.wav", 3.0, 300, 9)
        text, shots = storyboard(minutes)
        (folder / "story.yaml").write_text(text)
        longvid_s, longvid_peak = run([sys.executable, "-m", "longvid", "render", str(folder / "story.yaml"),
                                       "--audio-only", str(folder / "mix.wav"), "--cache", str(folder / "cache"),
                                       "-q"], sample=True)
        alone_s, alone_peak = 0.0, 0
        for cmd in ffmpeg_alone(folder, minutes, shots):
            wall, peak = run(cmd, sample=True)
            alone_s, alone_peak = alone_s + wall, max(alone_peak, peak)
        results[f"{minutes:g} min"] = {"shots": shots, "longvid_seconds": round(longvid_s, 2),
                                       "longvid_peak_mib": round(longvid_peak / 2**20, 1),
                                       "ffmpeg_seconds": round(alone_s, 2),
                                       "ffmpeg_peak_mib": round(alone_peak / 2**20, 1)}
        print(json.dumps({f"{minutes:g} min": results[f"{minutes:g} min"]}), flush=True)
        shutil.rmtree(folder / "cache", ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
