"""The storyboard's soundtrack (`mix` task): music, shots' sounds, voice lines and the video model's own sound,
mixed sample-exactly to the cuts, ducked under voice, levelled to a loudness; stored as FLAC, muxed as AAC at the
concat."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from longvid.audio.loudness import flac, measure, normalise
from longvid.audio.mix import Placed, blocks
from longvid.audiofile import decode_to
from longvid.stages.base import Output, StageSpec
from longvid.tasks import MixParams, Task


class Soundtrack:
    """The soundtrack, as a FLAC file exactly as long as the video."""

    spec = StageSpec(name="mix", kind="mix", code_version="1", params=MixParams, inputs=("audio", "sound"), output="audio")

    def __call__(self, task: Task, inputs: Any) -> Output:
        p: MixParams = task.params
        folder = Path(tempfile.mkdtemp(prefix="longvid-mix-"))
        try:
            # 1. every sound decoded once (a file under many shots too) to raw float at the mix's rate, on disk
            placed, decoded = [], {}
            for source in p.sources:
                what = source.file.sha256 if source.file else source.task
                if what not in decoded:
                    raw = folder / f"{len(decoded)}.f32"
                    path = source.file.path if source.file else inputs.path(source.task)
                    decoded[what] = (raw, decode_to(path, raw, p.rate, p.channels))
                placed.append(Placed(source, *decoded[what]))

            # 2. the mix, block by block, to one raw file
            mixed = folder / "mix.f32"
            with open(mixed, "wb") as out:
                for block in blocks(p, placed):
                    out.write(block.astype("<f4").tobytes())

            # 3. levelled to the loudness target (or not), as FLAC
            path = inputs.scratch(".flac")
            if p.loudness is not None:
                levels = normalise(mixed, p.rate, p.channels, p.samples, p.loudness, p.true_peak, path)
                final = levels["result"]
            else:
                flac(mixed, p.rate, p.channels, p.samples, path)
                levels = {"normalised": False}
                final = measure(["-i", str(path)])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return Output(path, {
            "rate": p.rate, "channels": p.channels, "samples": p.samples,
            "loudness": {"target": p.loudness, "true_peak_limit": p.true_peak, "normalised": levels["normalised"],
                         "integrated": _finite(final["input_i"]), "true_peak": _finite(final["input_tp"]),
                         "range": _finite(final["input_lra"])},
            "sources": [{"name": x.source.name, "role": x.source.role,
                         "file": x.source.file.path if x.source.file else None, "task": x.source.task,
                         "start": round(x.source.start / p.rate, 6), "start_sample": x.source.start,
                         "gain_db": x.source.gain_db, "length": round((x.end - x.source.start) / p.rate, 6),
                         "samples": x.end - x.source.start, "loop": x.source.loop} for x in placed],
            "clicks": len(p.clicks)})


def _finite(value: float) -> float | None:
    return round(value, 2) if value == value and abs(value) != float("inf") else None
