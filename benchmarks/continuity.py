"""Seams on real footage: chunk a clip, perturb each chunk the way generators drift, stitch, measure.

    python benchmarks/continuity.py [--clips DIR] [--frames 97] [--chunk 25] [--overlap 8] [--width 480] [--drift 1]

Three groups of footage, from the clips in ../shared/data/clips:

* **moving**: each clip's first `frames` frames, as they are (handheld, people and animals moving);
* **still segments**: each clip's stillest stretch of 49 frames (the lowest median difference between frames);
* **locked-off**: each clip's stillest frame held for `frames` frames, with a sensor's grain of its own in every
  frame (sigma 1), as a camera on a tripod films a still scene.

Each is cut into overlapping chunks (`timing.chunk_windows`); each chunk gets its own seeded drift: brightness and
contrast, a colour cast, a small global shift and a grain of its own, steady through the chunk, as a generator's
texture is. The chunks are stitched through longvid's own blend and colour anchoring code with `cut` (no overlap)
and `overlap-blend` (linear and cosine ramps; the pyramid ramp equals the linear one while an overlap is under half
a chunk), plain, and with the cosine ramp flow-aligned (``align: flow``), each with and without colour anchoring to
the clip's keyframes (its first and last frames, interpolated over each chunk's frames, as for a shot moving
between two keyframes).
Reported per group and strategy, as means over the clips: the seam score (`stitching.seams`; 1.0 means invisible),
the colour drift (delta-E of each chunk's mean Lab colour against the same frames of the unperturbed clip) and the
PSNR against the clip. Goal: overlap-blend with colour anchoring under 1.3 mean seam score on every group, where
`cut` is far above it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from longvid.stitching.blend import blend_chunks  # noqa: E402
from longvid.stitching.colour import LabStats, anchor_colours, at, delta_e  # noqa: E402
from longvid.stitching.seams import ShotSpan, chunk_spans, measure  # noqa: E402
from longvid.timing import chunk_windows  # noqa: E402

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
STILL_FRAMES = 49  # a still segment: three chunks of 25 overlapping by 8, two seams


def read_clip(path: Path, frames: int, width: int) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path), output_params=["-vf", f"scale={width}:-2"])
    meta = next(reader)
    w, h = meta["size"]
    out = []
    for raw in reader:
        out.append(np.frombuffer(raw, np.uint8).reshape(h, w, 3))
        if len(out) == frames:
            break
    return np.stack(out)


def motion(clip: np.ndarray) -> np.ndarray:
    """Mean absolute difference of each pair of consecutive frames (on a sample)."""
    sample = clip[:, ::3, ::3].astype(np.int16)
    return np.abs(np.diff(sample, axis=0)).mean(axis=(1, 2, 3))


def still_segment(clip: np.ndarray, frames: int = STILL_FRAMES) -> np.ndarray:
    """The stretch of `frames` frames whose median difference between frames is lowest."""
    diffs = motion(clip)
    start = min(range(len(clip) - frames + 1), key=lambda i: np.median(diffs[i:i + frames - 1]))
    return clip[start:start + frames]


def locked_off(clip: np.ndarray, frames: int, seed: int) -> np.ndarray:
    """The clip's stillest frame held for `frames` frames, each with a fresh sensor grain (sigma 1)."""
    still = clip[int(np.argmin(motion(clip))) + 1].astype(np.float32)
    rng = np.random.default_rng(seed)
    return np.stack([np.clip(np.rint(still + rng.normal(0, 1.0, still.shape)), 0, 255).astype(np.uint8)
                     for _ in range(frames)])


def drift(frames: np.ndarray, seed: int, scale: float = 1.0) -> np.ndarray:
    """One chunk's generator drift: brightness, contrast, a colour cast, a 0-2 px shift, its own grain."""
    rng = np.random.default_rng(seed)
    x = frames.astype(np.float32)
    mean = x.mean()
    x = (x - mean) * (1 + scale * rng.uniform(-0.12, 0.12)) + mean + scale * rng.uniform(-14, 14)
    x += scale * rng.uniform(-10, 10, size=3)
    dy, dx = rng.integers(-2, 3, size=2)
    x = np.roll(x, (int(dy), int(dx)), axis=(1, 2))
    x += rng.normal(0, 2.0, size=x.shape[1:])  # a grain of its own, steady through the chunk
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def stitch(clip: np.ndarray, chunk: int, overlap: int, ramp: str, align: str, anchor: bool, seed: int,
           scale: float) -> tuple[float, float, float]:
    windows = chunk_windows(len(clip), chunk, overlap)
    keyframes = [(0, LabStats.of(clip[0])), (len(clip) - 1, LabStats.of(clip[-1]))]
    chunks: dict[int, np.ndarray] = {}

    def generate(i: int) -> np.ndarray:
        if i not in chunks:
            w = windows[i]
            frames = drift(clip[w.start:w.start + w.used], seed * 1000 + i, scale)
            if anchor:
                frames = anchor_colours(frames, at(keyframes, range(w.start, w.start + w.used)), 1.0)
            chunks[i] = frames
        return chunks[i]

    video = np.stack(list(blend_chunks(windows, generate, ramp, align)))
    frames = range(len(clip))
    layout = [ShotSpan("clip", frames, chunk_spans([(w.start, w.end, w.overlap) for w in windows], 0, 1.0, frames))]
    qa = measure(video, layout, flow=False)
    colour = [delta_e(LabStats.of(video[w.start:w.end]).mean, LabStats.of(clip[w.start:w.end]).mean)
              for w in windows]
    mse = np.mean((video.astype(np.float64) - clip) ** 2)
    return qa["summary"]["mean_seam_score"], float(np.mean(colour)), 10 * np.log10(255 ** 2 / max(mse, 1e-9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=Path, default=CLIPS)
    parser.add_argument("--frames", type=int, default=97)
    parser.add_argument("--chunk", type=int, default=25)
    parser.add_argument("--overlap", type=int, default=8)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--drift", type=float, default=1.0, help="scale of the brightness, contrast and colour drift")
    args = parser.parse_args()
    strategies = [("cut", 0, "linear", "none"), ("overlap-blend linear", args.overlap, "linear", "none"),
                  ("overlap-blend cosine", args.overlap, "cosine", "none"),
                  ("overlap-blend cosine, flow-aligned", args.overlap, "cosine", "flow")]
    rows: dict[tuple[str, str], list] = {}
    clips = sorted(args.clips.glob("*.mp4"))
    for n, path in enumerate(clips):
        clip = read_clip(path, max(args.frames, 200), args.width)
        groups = {"moving": clip[:args.frames], "still segments": still_segment(clip),
                  "locked-off": locked_off(clip, args.frames, n)}
        for group, footage in groups.items():
            for name, overlap, ramp, align in strategies:
                for anchor in (False, True):
                    label = name + (" + colour anchoring" if anchor else "")
                    rows.setdefault((group, label), []).append(
                        stitch(footage, args.chunk, overlap, ramp, align, anchor, n, args.drift))
        print(f"{path.name}: {len(clip)} frames", file=sys.stderr, flush=True)
    print("| footage | strategy | mean seam score | colour drift (delta-E) | PSNR (dB) |\n| --- | --- | --- | --- | --- |")
    summary: dict[str, dict] = {}
    for (group, label), values in rows.items():
        seam, colour, psnr = (float(np.mean([v[i] for v in values])) for i in range(3))
        worst = max(v[0] for v in values)
        summary.setdefault(group, {})[label] = {"seam_score": round(seam, 3), "worst_clip": round(worst, 3),
                                                "colour_drift": round(colour, 2), "psnr": round(psnr, 2)}
        print(f"| {group} | {label} | {seam:.2f} (worst clip {worst:.2f}) | {colour:.2f} | {psnr:.2f} |")
    print(json.dumps({"clips": len(clips), "drift": args.drift, "frames": args.frames, "chunk": args.chunk,
                      "overlap": args.overlap, "results": summary}))


if __name__ == "__main__":
    main()
