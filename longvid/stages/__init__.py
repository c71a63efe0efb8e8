"""Stages by name. Each is imported only when a render needs it, so declarations stay cheap to read."""

from __future__ import annotations

import importlib

from longvid.stages.base import Stage, StageSpec

_REGISTRY = {
    "preview.keyframe": ("longvid.stages.preview", "PreviewKeyframe"),
    "preview.chunk": ("longvid.stages.preview", "PreviewChunk"),
    "interpolate": ("longvid.stages.interpolate", "Interpolate"),
    "diffusers.keyframe": ("longvid.stages.keyframes", "DiffusersKeyframe"),
    "svd.chunk": ("longvid.stages.video", "SVDChunk"),
    "cogvideox.chunk": ("longvid.stages.video", "CogVideoXChunk"),
    "wan.chunk": ("longvid.stages.video", "WanChunk"),
    "ltx.chunk": ("longvid.stages.video", "LTXChunk"),
    "animatediff.chunk": ("longvid.stages.video", "AnimateDiffChunk"),
}


def get_stage(name: str) -> Stage:
    """An instance of the stage called `name`."""
    if name not in _REGISTRY:
        raise KeyError(f"no stage called {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)()


__all__ = ["Stage", "StageSpec", "get_stage"]
