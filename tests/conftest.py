"""Shared helpers: storyboards written to temporary files, and a real ffmpeg probe of rendered videos."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Weights the tests fetch (RIFE) go to a test cache in the repository, never the user's ~/.cache; set before any
# test asks, so `interpolation: auto` resolves the same way for every test whatever the user has fetched.
os.environ["LONGVID_MODELS"] = str(ROOT / ".pytest-models")

SMALL = """\
title: Small
fps: 12
width: 160
height: 96
seed: 7
characters:
  fox: a red fox with a white-tipped tail
shots:
  - id: wake
    prompt: "{fox} wakes in the snow"
    duration: 2
    camera: push-in
    transition: {type: crossfade, duration: 0.5}
  - id: hunt
    prompt: "{fox} hunts under the snow"
    duration: 3.5
    camera: pan-left
    keyframes:
      - at: 3.5
        prompt: "{fox} leaps"
  - id: night
    prompt: the forest at night
    duration: 1.5
"""


# The same storyboard generated at half the rate and interpolated: its interpolate tasks need a device worker, so
# they land on worker processes (or Ray actors) and never on the lanes of the test's own process; faults that kill
# a worker aim at them.
SMALL_INTERPOLATED = SMALL + "models:\n  interpolation: {backend: linear, factor: 2}\n"


def requires(module: str, extra: str) -> pytest.MarkDecorator:
    """Skip a test, saying why, when an optional extra's module is not installed."""
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"needs {module}: pip install 'longvid[{extra}]'")


needs_opencv = requires("cv2", "rife")
needs_torch = requires("torch", "diffusers")


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> Path:
    """Each test renders into a cache of its own (subprocesses inherit it through the environment)."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("LONGVID_CACHE", str(cache))
    return cache


@pytest.fixture
def small_storyboard(tmp_path: Path) -> Path:
    return write(tmp_path / "small.yaml", SMALL)


@pytest.fixture
def interpolated_storyboard(tmp_path: Path) -> Path:
    return write(tmp_path / "interpolated.yaml", SMALL_INTERPOLATED)


def faults(tmp_path: Path, monkeypatch, plan: dict) -> Path:
    """Inject faults into tasks (`longvid.execution.faults`) for the rest of the test."""
    path = tmp_path / "faults.json"
    path.write_text(json.dumps(plan))
    monkeypatch.setenv("LONGVID_FAULTS", str(path))
    return path


def probe(path: Path) -> dict:
    """Decode the whole video with ffmpeg: its stream info, frame count and a hash of every decoded frame."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    hashes = []
    first = None
    for raw in reader:
        if first is None:
            first = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        hashes.append(hashlib.sha256(raw).hexdigest())
    return {
        "frames": len(hashes),
        "fps": meta["fps"],
        "width": width,
        "height": height,
        "codec": meta["codec"],
        "pix_fmt": meta["pix_fmt"].split("(")[0],
        "hashes": hashes,
        "first": first,
    }


def decode(path: Path) -> np.ndarray:
    """Every decoded frame, as an F x H x W x 3 array."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return np.stack([np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader])


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `longvid` entry point in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "longvid", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=600)
