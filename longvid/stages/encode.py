"""The stitch, as two stages: `Encode` makes one H.264 segment, `Concat` joins the segments into the MP4.

A segment is encoded from the frames of the shots it shows (blended from their chunks, or read from their
interpolation), crossfades mixed, and measured for seam QA on the way; its file and its measures are cached by
its content key like any other artifact. The MP4 is a stream copy of the segments: a render whose segments are all
cached encodes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from longvid.stages.base import Output, StageSpec
from longvid.stages.sources import shot_frames
from longvid.stitching.blend import mix
from longvid.stitching.encode import Mp4Writer, concat
from longvid.stitching.seams import FrameMeter
from longvid.tasks import ConcatParams, EncodeParams, Piece, Task


def piece_frames(piece: Piece, inputs: Any) -> Iterator[tuple[np.ndarray, Mapping[str, np.ndarray]]]:
    """A piece's frames: one shot's, or two shots' crossfaded with the piece's weights; each with the shots' own
    frames by shot id, which the seam QA measures (a crossfade is not a seam)."""
    a = shot_frames(piece.a, inputs, piece.a_offset, piece.a_offset + piece.frames)
    if piece.b is None:
        for frame in a:
            yield frame, {piece.a.shot: frame}
        return
    b = shot_frames(piece.b, inputs, piece.b_offset, piece.b_offset + piece.frames)
    for frame_a, frame_b, weight in zip(a, b, piece.weights, strict=True):
        yield mix(frame_a, frame_b, weight), {piece.a.shot: frame_a, piece.b.shot: frame_b}


class Encode:
    """One segment of the output: H.264 (one x264 thread, so its bytes depend on its content alone)."""

    spec = StageSpec(name="encode", kind="encode", code_version="2", params=EncodeParams,
                     inputs=("chunk", "decode", "refine", "interpolate", "keyframe"), output="segment")

    def __call__(self, task: Task, inputs: Any) -> Output:
        # 1. check inputs
        p: EncodeParams = task.params
        meter = FrameMeter(p.qa_shots, p.qa_seams, lead=1 if p.lead_in else 0)

        # 2. the frame before the segment, for the QA of the pair across its start
        if p.lead_in:
            for _, own in piece_frames(p.lead_in, inputs):
                meter.add(own)

        # 3. encode, measuring as the frames pass
        path = inputs.scratch(".mp4")
        with Mp4Writer(path, p.width, p.height, p.fps, crf=p.crf, preset=p.preset, threads=1) as writer:
            for piece in p.pieces:
                for frame, own in piece_frames(piece, inputs):
                    writer.write(frame)
                    meter.add(own)
        if writer.frames != p.frames:
            path.unlink(missing_ok=True)
            raise RuntimeError(f"{task.id}: encoded {writer.frames} frames, the segment needs {p.frames}")

        # 4. the frame after it (crossfades), for the pair across its end
        if p.lead_out:
            for _, own in piece_frames(p.lead_out, inputs):
                meter.add(own)
        return Output(path, {"frames": writer.frames, "qa": meter.measures()})


class Concat:
    """The MP4: the segments joined by stream copy, index first. Not stored: it is cheap and goes to the output."""

    spec = StageSpec(name="concat", kind="concat", code_version="2", params=ConcatParams, inputs=("encode", "audio", "mix"),
                     output="file", resources={"here": True}, cache=False)

    def __call__(self, task: Task, inputs: Any) -> None:
        p: ConcatParams = task.params
        if p.output is None:
            raise ValueError("`output` is not set: the concat task of a plan made without an output path")
        concat([inputs.path(segment) for segment in p.segments], p.output, p.fps,
               audio=inputs.path(p.audio) if p.audio else None)
