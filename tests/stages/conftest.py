"""Tiny diffusers pipelines for the stage tests, built once per session, and storyboards that use them."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from tests.conftest import write


def calls_to(monkeypatch, cls) -> list[dict]:
    """The keyword arguments of every call to pipeline class `cls` for the rest of the test, in order."""
    calls: list[dict] = []
    original = cls.__call__

    @functools.wraps(original)  # the stage reads the call's signature to pass only what a pipeline takes
    def recording(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", recording)
    return calls


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``tiny(kind)``: the folder of a tiny saved pipeline, built once per session."""
    root = tmp_path_factory.mktemp("tiny-models")
    from tests.tiny_models import build

    return lambda kind: build(kind, root)


def storyboard(tmp_path: Path, video: dict, *, fps: float, durations=(1.0, 0.75, 0.5), keyframes: str | None = None,
               shot_keyframes: dict[int, list] | None = None, seed: int = 7) -> Path:
    models = {"video": video | {"steps": 2}}
    if keyframes:
        models["keyframes"] = {"model": keyframes, "steps": 2}
    shots = []
    for i, duration in enumerate(durations):
        shot = {"id": f"s{i}", "prompt": ["a boat at sea", "the light house", "the sea at night"][i % 3],
                "duration": duration}
        if shot_keyframes and i in shot_keyframes:
            shot["keyframes"] = shot_keyframes[i]
        shots.append(shot)
    data = {"title": "tiny", "fps": fps, "width": 64, "height": 64, "seed": seed, "models": models,
            "continuity": {"overlap": 2}, "shots": shots}
    return write(tmp_path / "story.yaml", json.dumps(data))
