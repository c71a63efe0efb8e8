"""Tiny diffusers pipelines for the stage tests, built once per session, and storyboards that use them."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from tests.conftest import write


def frames_key(chunk: dict) -> str:
    """The cache key of a manifest chunk's frames: its decode's, for a family whose chunks store latents."""
    return (chunk.get("decode") or chunk)["cache_key"]


def decode(latents, family: str, path: str, size: tuple[int, int], frames: int):
    """`latents` (`cache.Latents`) through the decode stage, as a render's decode task runs it."""
    from longvid.stages import get_stage
    from longvid.tasks import DecodeParams, Task

    class Stored(dict):
        def latents(self, task_id):
            return self[task_id]

    params = DecodeParams(family=family, latents="chunk:s:0", path=path, width=size[0], height=size[1], frames=frames)
    task = Task("decode:s:0", "decode", "decode", "s", 0, None, (0, frames), "shot-base", path, params, ("chunk:s:0",))
    return get_stage("decode")(task, Stored({"chunk:s:0": latents})).value


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
