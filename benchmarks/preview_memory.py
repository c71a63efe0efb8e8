"""Peak memory and throughput of preview renders, against plain ffmpeg encoding the same frames.

    python benchmarks/preview_memory.py [--seconds 60 600] [--width 1280 --height 720] [--out DIR]

For each length, a storyboard of 6-second shots (camera moves, keyframes, a crossfade every fourth cut) is rendered
in a fresh process into an empty cache (so every task runs, and the cache's size per minute is measured); its peak RSS (the Python process) and ffmpeg's (its child) are read from getrusage. The
baseline decodes the rendered video and encodes it again with ffmpeg alone, with the same x264 settings, so the
same content is encoded. The goal: peak RSS of the longest render within 1.15x of the shortest's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg

SHOT_SECONDS = 6
CAMERAS = ["push-in", "pan-right", "static", "tilt-up", "pull-out", "pan-left"]

RENDER = """
import json, resource, sys, time
import longvid
from benchmarks.preview_memory import storyboard
seconds, width, height, preset, out, cache = (float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
                                              sys.argv[5], sys.argv[6])
began = time.perf_counter()
manifest = longvid.render(storyboard(seconds, width, height), out, preset=preset, cache_dir=cache)
wall = time.perf_counter() - began
print(json.dumps({"frames": manifest["video"]["frames"], "seconds": wall,
                  "python_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "ffmpeg_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def storyboard(seconds: float, width: int, height: int):
    """A storyboard of `seconds` in 6-second shots."""
    import longvid

    story = longvid.Storyboard(f"Benchmark {seconds:g} s", fps=24, width=width, height=height, seed=1,
                               style="benchmark").character("hero", "a traveller in a green coat")
    shots = max(1, round(seconds / SHOT_SECONDS))
    for i in range(shots):
        shot = story.shot(f"s{i:03d}", f"{{hero}} walks through place number {i}", duration=seconds / shots,
                          camera=CAMERAS[i % len(CAMERAS)])
        shot.keyframe(at=seconds / shots, prompt=f"{{hero}} arrives at place number {i + 1}")
        if i % 4 == 3 and i + 1 < shots:
            shot.crossfade(0.5)
    return story


def baseline(rendered: Path, preset: str, out: Path) -> dict:
    """ffmpeg alone: decode the rendered frames and encode them again with the same settings."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(rendered), "-c:v", "libx264",
           "-crf", "18", "-preset", preset, "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out)]
    began = time.perf_counter()
    subprocess.run(cmd, check=True)
    return {"seconds": time.perf_counter() - began}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[60, 600])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[1]

    rows = []
    for seconds in args.seconds:
        video = args.out / f"preview_{seconds:g}s.mp4"
        cache = args.out / f"cache_{seconds:g}s"
        shutil.rmtree(cache, ignore_errors=True)  # a cold render: every task runs
        result = subprocess.run([sys.executable, "-c", RENDER, str(seconds), str(args.width), str(args.height),
                                 args.preset, str(video), str(cache)], cwd=root, capture_output=True, text=True,
                                check=True)
        row = json.loads(result.stdout.strip().splitlines()[-1])
        row["cache_mib_per_minute"] = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 2**20 / (
            seconds / 60)
        plain = baseline(video, args.preset, args.out / f"plain_{seconds:g}s.mp4")
        row |= {"duration_s": seconds, "render_fps": row["frames"] / row["seconds"],
                "ffmpeg_fps": row["frames"] / plain["seconds"], "ffmpeg_seconds": plain["seconds"]}
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(f"\n{args.width}x{args.height}, 24 fps, x264 crf 18 preset {args.preset}\n")
    print("| length | frames | render wall | render fps | plain ffmpeg fps | render / ffmpeg | peak RSS python | "
          "peak RSS ffmpeg | cache per minute |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['duration_s']:g} s | {r['frames']} | {r['seconds']:.1f} s | {r['render_fps']:.1f} | "
              f"{r['ffmpeg_fps']:.1f} | {r['render_fps'] / r['ffmpeg_fps']:.2f} | {r['python_peak_mib']:.0f} MiB | "
              f"{r['ffmpeg_peak_mib']:.0f} MiB | {r['cache_mib_per_minute']:.0f} MiB |")
    growth = rows[-1]["python_peak_mib"] / rows[0]["python_peak_mib"]
    verdict = "PASS" if growth <= 1.15 else "FAIL"
    print(f"\npeak RSS growth {rows[-1]['duration_s']:g} s / {rows[0]['duration_s']:g} s: {growth:.3f}x "
          f"(goal <= 1.15x): {verdict}")
    (args.out / "preview_memory.json").write_text(json.dumps(rows, indent=2))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
