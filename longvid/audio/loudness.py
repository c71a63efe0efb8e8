"""Loudness (EBU R128) by ffmpeg's `loudnorm`, in two passes: measure, then apply one gain (linear mode) with a
true-peak ceiling. loudnorm falls back to its dynamic mode only when one gain cannot meet both the target and the
ceiling. Both passes stream the file; nothing here holds the soundtrack in memory."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

from longvid.audiofile import ffmpeg

LRA = 50.0  # the widest loudness range loudnorm takes, so that a gain alone (linear mode) is used whenever it can


def _raw_input(raw: Path, rate: int, channels: int) -> list[str]:
    return ["-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", str(raw)]


def _loudnorm(args: list[str], afilter: str, out: list[str]) -> dict:
    """Run ffmpeg with a loudnorm filter that prints JSON; its figures as floats (-inf for silence)."""
    result = subprocess.run([ffmpeg(), "-y", "-hide_banner", "-nostdin", "-nostats", *args, "-af", afilter, *out],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg loudnorm failed: {result.stderr.strip()[-500:]}")
    text = result.stderr[result.stderr.rindex("{"):result.stderr.rindex("}") + 1]
    return {k: float(v) if k != "normalization_type" else v for k, v in json.loads(text).items()}


def measure(args: list[str], target: float = -23.0, true_peak: float = -1.0) -> dict:
    """loudnorm's first pass over the input `args` (ffmpeg input options): integrated loudness `input_i` (LUFS),
    true peak `input_tp` (dBTP), loudness range `input_lra`, and what the second pass needs."""
    return _loudnorm(args, f"loudnorm=I={target}:TP={true_peak}:LRA={LRA}:print_format=json", ["-f", "null", "-"])


def normalise(raw: Path, rate: int, channels: int, samples: int, target: float, true_peak: float, out: Path) -> dict:
    """Level the raw float mix to `target` LUFS with a `true_peak` ceiling, as FLAC (24 bits) at `rate`, exactly
    `samples` long. Returns the first pass's figures (`measured`), the second's on what it wrote (`result`:
    `input_i`, `input_tp`, `input_lra`) and whether a gain was applied.

    Silence (or near it) is left as it is: there is no loudness to scale.
    """
    args = _raw_input(raw, rate, channels)
    first = measure(args, target, true_peak)
    if not math.isfinite(first["input_i"]) or first["input_i"] < -70:
        _flac(args, "anull", samples, rate, out)
        return {"measured": first, "result": first, "normalised": False}
    afilter = (f"loudnorm=I={target}:TP={true_peak}:LRA={LRA}:measured_I={first['input_i']}:"
               f"measured_TP={first['input_tp']}:measured_LRA={first['input_lra']}:"
               f"measured_thresh={first['input_thresh']}:offset={first['target_offset']}:linear=true:"
               f"print_format=json")
    second = _flac(args, afilter, samples, rate, out)
    # the second pass reports what it wrote: no third pass is needed to measure the result
    result = {"input_i": second["output_i"], "input_tp": second["output_tp"], "input_lra": second["output_lra"]}
    return {"measured": first, "result": result, "normalised": True}


def _flac(args: list[str], afilter: str, samples: int, rate: int, out: Path) -> dict:
    # loudnorm works at 192 kHz; back to the mix's rate, then padded or cut to the exact length
    chain = f"{afilter},aresample={rate},apad=whole_len={samples},atrim=end_sample={samples}"
    result = subprocess.run([ffmpeg(), "-y", "-hide_banner", "-nostdin", "-nostats", *args, "-af", chain, "-c:a",
                             "flac", "-sample_fmt", "s32", "-f", "flac", str(out)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write the soundtrack: {result.stderr.strip()[-500:]}")
    if "print_format=json" not in afilter:
        return {}
    text = result.stderr[result.stderr.rindex("{"):result.stderr.rindex("}") + 1]
    return {k: float(v) if k != "normalization_type" else v for k, v in json.loads(text).items()}


def flac(raw: Path, rate: int, channels: int, samples: int, out: Path) -> None:
    """The raw float mix as FLAC, levels as they are (clipped at full scale)."""
    _flac(_raw_input(raw, rate, channels), "anull", samples, rate, out)
