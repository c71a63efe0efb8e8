"""Frame interpolation on real footage: drop every other frame, rebuild it, compare with the real one.

    python benchmarks/interpolation.py [--backends linear flow rife rife-ncnn] [--ncnn-model DIR] [--max-pairs N]

For every clip in ../shared/data/clips, frame 2k+1 is interpolated at t = 0.5 from frames 2k and 2k+2 by each
backend. Reported per backend and clip: PSNR (RGB) and SSIM (luma; 11x11 Gaussian window, sigma 1.5) against the
real frame, and interpolated frames per second on this machine. rife needs ``longvid models fetch rife-4.0``;
rife-ncnn needs a RIFE ncnn model folder (it is skipped without one).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from longvid.stages.interpolate import make_interpolator

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of the luma of two RGB frames (Wang et al. 2004 constants)."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float(np.mean(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))))


def frames_of(clip: Path) -> list[np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(clip), pix_fmt="rgb24")
    meta = next(reader)
    width, height = meta["size"]
    return [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["linear", "flow", "rife", "rife-single", "rife-ncnn"],
                        help="rife-single: RIFE without the both-ways ensemble the rife backend uses")
    parser.add_argument("--ncnn-model", help="RIFE ncnn model folder for rife-ncnn")
    parser.add_argument("--clips", type=Path, default=CLIPS)
    parser.add_argument("--max-pairs", type=int, default=0, help="pairs per clip (0: all)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)

    interpolators = {}
    for backend in args.backends:
        model = args.ncnn_model if backend == "rife-ncnn" else None
        if backend == "rife-ncnn" and not model:
            print("rife-ncnn: skipped (no --ncnn-model folder)")
            continue
        try:
            if backend == "rife-single":
                from longvid import models
                from longvid.stages.rife import RifeInterpolator

                interpolators[backend] = RifeInterpolator(models.installed("rife-4.0") or "missing", ensemble=False)
                continue
            interpolators[backend] = make_interpolator(backend, model)
        except Exception as exc:  # a backend that is not installed is reported, not fatal
            print(f"{backend}: skipped ({exc})")
    results: dict[str, dict[str, dict]] = {b: {} for b in interpolators}
    for clip in sorted(args.clips.glob("*.mp4")):
        frames = frames_of(clip)
        triples = [(frames[i], frames[i + 1], frames[i + 2]) for i in range(0, len(frames) - 2, 2)]
        if args.max_pairs:
            triples = triples[: args.max_pairs]
        for backend, between in interpolators.items():
            between(triples[0][0], triples[0][2], [0.5])  # warm-up: model load, first-call costs
            scores, began = [], time.perf_counter()
            for before, truth, after in triples:
                made = between(before, after, [0.5])[0]
                scores.append((psnr(made, truth), ssim(made, truth)))
            seconds = time.perf_counter() - began
            results[backend][clip.stem] = {"psnr": float(np.mean([s[0] for s in scores])),
                                           "ssim": float(np.mean([s[1] for s in scores])),
                                           "fps": len(triples) / seconds, "pairs": len(triples),
                                           "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}"}
            r = results[backend][clip.stem]
            print(f"{clip.stem:<20} {backend:<10} PSNR {r['psnr']:6.2f}  SSIM {r['ssim']:.4f}  {r['fps']:7.1f} fps",
                  flush=True)

    print("\n| backend | mean PSNR (dB) | mean SSIM | mean fps (this CPU) |")
    print("|---|---|---|---|")
    means = {}
    for backend, per_clip in results.items():
        means[backend] = {k: float(np.mean([r[k] for r in per_clip.values()])) for k in ("psnr", "ssim", "fps")}
        m = means[backend]
        print(f"| {backend} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['fps']:.1f} |")
    clips = sorted(next(iter(results.values()), {}))
    print("\n| clip | " + " | ".join(f"{b} PSNR / SSIM" for b in results) + " |")
    print("|---|" + "---|" * len(results))
    for clip in clips:
        cells = [f"{results[b][clip]['psnr']:.2f} / {results[b][clip]['ssim']:.4f}" for b in results]
        print(f"| {clip} ({results[next(iter(results))][clip]['size']}) | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"means": means, "clips": results}, indent=2))
    order = [b for b in ("rife", "flow", "linear") if b in means]
    ok = all(means[a]["psnr"] > means[b]["psnr"] for a, b in zip(order, order[1:], strict=False))
    print(f"\n{'PASS' if ok else 'FAIL'}: mean PSNR ordered {' > '.join(order)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
