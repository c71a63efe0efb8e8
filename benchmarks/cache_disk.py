"""Disk use of the artifact cache per minute of 720p output, on real footage.

    python benchmarks/cache_disk.py [--clips ../shared/data/clips]

Each clip is scaled to 1280x720 and stored the way chunk artifacts are (Ut Video in Matroska, bit-exact RGB),
in 33-frame chunks; the bytes per frame give MiB per minute at 24 fps, against raw RGB (3.9 GiB per minute). A
round trip checks the storage is lossless.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from longvid.cache import ArtifactStore

FPS, WIDTH, HEIGHT, CHUNK = 24, 1280, 720, 33


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/clips")
    args = parser.parse_args()
    logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)  # it warns that we asked ffmpeg to rescale
    clips = sorted(args.clips.glob("*.mp4"))
    if not clips:
        print(f"no clips in {args.clips}")
        return 1
    raw_per_minute = WIDTH * HEIGHT * 3 * FPS * 60
    print("| clip | frames | MiB / frame | MiB / minute at 24 fps | of raw | write fps | read fps |")
    print("|---|---|---|---|---|---|---|")
    totals = []
    with tempfile.TemporaryDirectory() as root:
        store = ArtifactStore(root)
        for clip in clips:
            reader = imageio_ffmpeg.read_frames(str(clip), output_params=["-vf", f"scale={WIDTH}:{HEIGHT}"])
            next(reader)
            frames = np.stack([np.frombuffer(raw, np.uint8).reshape(HEIGHT, WIDTH, 3) for raw in reader])
            size = write_seconds = read_seconds = 0.0
            for i in range(0, len(frames), CHUNK):
                chunk = frames[i:i + CHUNK]
                key = f"{clip.stem}-{i}".encode().hex().ljust(64, "0")[:64]
                began = time.perf_counter()
                size += store.put(key, chunk, {})["bytes"]
                write_seconds += time.perf_counter() - began
                began = time.perf_counter()
                back = store.load(key)
                read_seconds += time.perf_counter() - began
                assert np.array_equal(back, chunk), f"{clip.name}: the cache is not lossless"
            per_frame = size / len(frames)
            per_minute = per_frame * FPS * 60
            totals.append(per_minute)
            print(f"| {clip.stem} | {len(frames)} | {per_frame / 2**20:.2f} | {per_minute / 2**20:.0f} | "
                  f"{per_minute / raw_per_minute:.0%} | {len(frames) / write_seconds:.0f} | "
                  f"{len(frames) / read_seconds:.0f} |")
    mean = sum(totals) / len(totals)
    print(f"\nmean: {mean / 2**30:.2f} GiB per minute of 720p at 24 fps ({mean / raw_per_minute:.0%} of raw "
          f"{raw_per_minute / 2**30:.2f} GiB), bit-exact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
