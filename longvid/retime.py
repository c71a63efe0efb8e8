"""`longvid interpolate`: raise the frame rate of an existing video, streaming, with any interpolation backend."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from longvid.errors import UserError
from longvid.execution.events import Event, Reporter, ignore
from longvid.rendering import check_output
from longvid.stitching.encode import Mp4Writer

ENCODE_EVENT_EVERY = 24  # frames between progress events


def interpolate_video(source: str | Path, output: str | Path, *, fps: float | None = None,
                      factor: float | None = None, backend: str = "auto", model: str | None = None,
                      scene_threshold: float | None = 0.4, crf: int = 18, preset: str = "medium",
                      report: Reporter = ignore) -> dict:
    """Raise the frame rate of an existing video: ``fps`` (the target) or ``factor``.

    A clip of n frames becomes ``floor((n - 1) * factor) + 1`` frames: the first and last frames stay where they
    are. Cuts inside the clip are detected (`scene_threshold`) and never blended.

    Returns:
        A summary: input and output frame counts and rates, the backend used.
    """
    import imageio_ffmpeg

    from longvid.models import resolve_interpolation
    from longvid.stages.interpolate import make_interpolator, resample

    # 1. check inputs
    source, output = Path(source), check_output(output)
    if not source.is_file():
        raise UserError(f"input video not found: {source}")
    if (fps is None) == (factor is None):
        raise UserError("give the target `--fps` or the `--factor`, one of them")
    try:
        frames_in, _ = imageio_ffmpeg.count_frames_and_secs(str(source))
        reader = imageio_ffmpeg.read_frames(str(source), pix_fmt="rgb24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise UserError(f"cannot read {source} as a video: {exc}") from None
    in_fps = float(meta["fps"])
    factor = fps / in_fps if fps is not None else factor
    if factor < 1:
        raise UserError(f"the target rate ({in_fps * factor:g} fps) is below the input's ({in_fps:g} fps)")
    if frames_in < 2:
        raise UserError(f"{source} has {frames_in} frame(s); interpolation needs two")
    # 2. prepare the interpolator
    backend, model, why = resolve_interpolation(backend, model)
    between = make_interpolator(backend, model)
    width, height = meta["size"]
    frames = (np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader)
    total = math.floor((frames_in - 1) * factor + 1e-9) + 1
    # 3. interpolate and encode, streaming
    began = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    with Mp4Writer(output, width, height, in_fps * factor, crf=crf, preset=preset) as writer:
        for frame in resample(frames, total, factor, between, scene_threshold):
            writer.write(frame)
            if writer.frames % ENCODE_EVENT_EVERY == 0 or writer.frames == total:
                report(Event("frames", "interpolate", done=writer.frames, total=total))
    return {"input_frames": frames_in, "input_fps": in_fps, "frames": total, "fps": in_fps * factor,
            "factor": factor, "backend": backend, "model": model, "note": why,
            "seconds": round(time.perf_counter() - began, 3)}
