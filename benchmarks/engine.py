"""The engine's own path, measured in one run: speed against plain ffmpeg, cached and edited renders, memory of the
whole process tree against length, and the start-up of the command line.

    python benchmarks/engine.py [--short 60] [--long 600] [--out out/engine]

1. **Speed.** A 60 s 1280x720 preview renders from an empty cache through ``longvid render``; plain ffmpeg then
   decodes that render and encodes the same frames again with the same x264 settings (crf 18, preset medium, all
   threads). Twice, alternating; the ratio of the summed times. Goal: the render at 0.8x plain ffmpeg's speed or
   better.
2. **Cached and edited renders.** A 5-shot storyboard (6 s shots, 720p) renders from an empty cache, then again
   with everything cached, then again after one shot's prompt changes. Goals: cached at 0.2x the fresh render's
   time or less, edited at 0.35x or less.
3. **Memory.** The peak of the summed RSS of the render's whole process tree (Python, its threads, every ffmpeg),
   sampled every 50 ms from /proc while it runs, at 60 s and at 600 s (renders of their own, so that sampling does
   not slow the timed ones). Goal: 600 s within 1.15x of 60 s.
4. **Start-up.** ``longvid --help``, the median of 15 runs. Goal: 0.35 s or less.

Every render runs as a user runs it: ``python -m longvid render ... -q`` in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import imageio_ffmpeg

ROOT = Path(__file__).resolve().parents[1]
CAMERAS = ["push-in", "pan-right", "static", "tilt-up", "pull-out", "pan-left"]
SHOT_SECONDS = 6


def storyboard(seconds: float, width: int = 1280, height: int = 720, edit: int | None = None) -> str:
    """YAML for `seconds` of 6-second shots: camera moves, a keyframe at each shot's end, a crossfade at every
    fourth cut; `edit` changes that shot's prompts."""
    import longvid

    story = longvid.Storyboard(f"Benchmark {seconds:g} s", fps=24, width=width, height=height, seed=1,
                               style="benchmark").character("hero", "a traveller in a green coat")
    shots = max(1, round(seconds / SHOT_SECONDS))
    for i in range(shots):
        place = f"place number {i}" + (" at night" if i == edit else "")
        shot = story.shot(f"s{i:03d}", f"{{hero}} walks through {place}", duration=seconds / shots,
                          camera=CAMERAS[i % len(CAMERAS)])
        shot.keyframe(at=seconds / shots, prompt=f"{{hero}} arrives at {place}, the next stop")
        if i % 4 == 3 and i + 1 < shots:
            shot.crossfade(0.5)
    return story.to_yaml()


def tree_rss(pid: int) -> int:
    """Summed resident memory (bytes) of `pid` and all its descendants, from /proc (children lists, so a sample
    costs little next to the render it watches)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for children in Path(f"/proc/{p}/task").glob("*/children"):
                stack += [int(c) for c in children.read_text().split()]
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run(cmd: list[str], sample: bool = False) -> tuple[float, int]:
    """Run `cmd`; its wall time, and the peak RSS of its process tree (when `sample`)."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sampler() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.05)

    thread = threading.Thread(target=sampler, daemon=True)
    if sample:
        thread.start()
    _, stderr = proc.communicate()
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr}")
    if sample:
        thread.join()
    return wall, peak[0]


def render(board: Path, output: Path, cache: Path, sample: bool = False) -> tuple[float, int]:
    return run([sys.executable, "-m", "longvid", "render", str(board), "-o", str(output), "--cache", str(cache),
                "-q"], sample)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=float, default=60)
    parser.add_argument("--long", type=float, default=600)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "engine")
    args = parser.parse_args()
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    results: dict[str, float] = {}

    # 1. speed against plain ffmpeg
    short = out / "short.yaml"
    short.write_text(storyboard(args.short))
    walls, plains = [], []
    for attempt in range(2):
        wall, _ = render(short, out / "short.mp4", out / f"cache-short-{attempt}")
        plain, _ = run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(out / "short.mp4"),
                        "-c:v", "libx264", "-crf", "18", "-preset", "medium", "-pix_fmt", "yuv420p", "-movflags",
                        "+faststart", str(out / "plain.mp4")])
        walls.append(wall)
        plains.append(plain)
    frames = round(args.short * 24)
    results |= {"render_seconds": walls, "ffmpeg_seconds": plains, "render_fps": frames * 2 / sum(walls),
                "ffmpeg_fps": frames * 2 / sum(plains), "speed_vs_ffmpeg": sum(plains) / sum(walls)}
    print(json.dumps(results), flush=True)

    # 2. cached and edited renders of five shots
    five, cache = out / "five.yaml", out / "cache-five"
    five.write_text(storyboard(5 * SHOT_SECONDS))
    fresh, _ = render(five, out / "five.mp4", cache)
    cached, _ = render(five, out / "five-cached.mp4", cache)
    five.write_text(storyboard(5 * SHOT_SECONDS, edit=2))
    edited, _ = render(five, out / "five-edited.mp4", cache)
    identical = (out / "five.mp4").read_bytes() == (out / "five-cached.mp4").read_bytes()
    results |= {"five_fresh_seconds": fresh, "five_cached_seconds": cached, "five_edited_seconds": edited,
                "cached_vs_fresh": cached / fresh, "edited_vs_fresh": edited / fresh, "cached_identical": identical}
    print(json.dumps(results), flush=True)

    # 3. memory of the whole process tree, short and long
    _, peak_short = render(short, out / "short-sampled.mp4", out / "cache-short-sampled", sample=True)
    long = out / "long.yaml"
    long.write_text(storyboard(args.long))
    long_wall, peak_long = render(long, out / "long.mp4", out / "cache-long", sample=True)
    results |= {"short_peak_tree_mib": peak_short / 2**20, "long_peak_tree_mib": peak_long / 2**20,
                "long_render_seconds": long_wall, "peak_growth": peak_long / peak_short}
    print(json.dumps(results), flush=True)

    # 4. start-up
    helps = [run([sys.executable, "-m", "longvid", "--help"])[0] for _ in range(15)]
    results["help_seconds"] = statistics.median(helps)

    goals = {"speed_vs_ffmpeg": (results["speed_vs_ffmpeg"], ">=", 0.8),
             "cached_vs_fresh": (results["cached_vs_fresh"], "<=", 0.2),
             "edited_vs_fresh": (results["edited_vs_fresh"], "<=", 0.35),
             "peak_growth": (results["peak_growth"], "<=", 1.15),
             "help_seconds": (results["help_seconds"], "<=", 0.35)}
    print(f"\n{args.short:g} s 1280x720 preview: {' and '.join(f'{w:.1f}' for w in walls)} s "
          f"({results['render_fps']:.1f} fps); plain ffmpeg {' and '.join(f'{p:.1f}' for p in plains)} s "
          f"({results['ffmpeg_fps']:.1f} fps)")
    print(f"five shots: fresh {fresh:.1f} s, cached {cached:.2f} s (same bytes: {identical}), edited {edited:.2f} s")
    print(f"peak RSS of the process tree: {results['short_peak_tree_mib']:.0f} MiB at {args.short:g} s, "
          f"{results['long_peak_tree_mib']:.0f} MiB at {args.long:g} s ({long_wall:.0f} s to render)\n")
    print("| measure | value | goal | |\n|---|---|---|---|")
    passed = True
    for name, (value, op, goal) in goals.items():
        ok = value >= goal if op == ">=" else value <= goal
        passed &= ok
        print(f"| {name} | {value:.3f} | {op} {goal:g} | {'PASS' if ok else 'FAIL'} |")
    (out / "engine.json").write_text(json.dumps(results, indent=2))
    return 0 if passed and identical else 1


if __name__ == "__main__":
    sys.exit(main())
