"""Stages by name. A stage's module is imported only when a render needs it; none imports torch at the top, so
reading a declaration (`get_spec`) stays cheap."""

from __future__ import annotations

import functools
import importlib

from longvid.stages.base import Output, Stage, StageSpec

_REGISTRY = {
    "preview.reference": ("longvid.stages.preview", "PreviewReference"),
    "diffusers.reference": ("longvid.stages.keyframes", "DiffusersReference"),
    "preview.keyframe": ("longvid.stages.preview", "PreviewKeyframe"),
    "preview.chunk": ("longvid.stages.preview", "PreviewChunk"),
    "interpolate": ("longvid.stages.interpolate", "Interpolate"),
    "diffusers.keyframe": ("longvid.stages.keyframes", "DiffusersKeyframe"),
    "svd.chunk": ("longvid.stages.video", "SVDChunk"),
    "cogvideox.chunk": ("longvid.stages.video", "CogVideoXChunk"),
    "wan.chunk": ("longvid.stages.video", "WanChunk"),
    "ltx.chunk": ("longvid.stages.video", "LTXChunk"),
    "animatediff.chunk": ("longvid.stages.video", "AnimateDiffChunk"),
    "skyreels.chunk": ("longvid.stages.video", "SkyReelsChunk"),
    "hunyuanvideo15.chunk": ("longvid.stages.video", "HunyuanVideo15Chunk"),
    "ltx2.chunk": ("longvid.stages.video", "LTX2Chunk"),
    "decode": ("longvid.stages.decode", "Decode"),
    "refine": ("longvid.stages.refine", "Refine"),
    "preview.refine": ("longvid.stages.refine", "PreviewRefine"),
    "identity": ("longvid.stages.identity", "IdentityQA"),
    "audio": ("longvid.stages.audio", "AudioMix"),
    "mix": ("longvid.stages.soundtrack", "Soundtrack"),
    "diffusers.sound": ("longvid.stages.sound", "GeneratedSound"),
    "encode": ("longvid.stages.encode", "Encode"),
    "concat": ("longvid.stages.encode", "Concat"),
}


def known() -> list[str]:
    return sorted(_REGISTRY)


def _class(name: str) -> type:
    if name not in _REGISTRY:
        raise KeyError(f"no stage called {name!r}; known: {', '.join(known())}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


@functools.cache
def get_spec(name: str) -> StageSpec:
    """The declaration of the stage called `name` (no model is loaded)."""
    return _class(name).spec


def get_stage(name: str) -> Stage:
    """A new instance of the stage called `name`."""
    return _class(name)()


__all__ = ["Output", "Stage", "StageSpec", "get_spec", "get_stage", "known"]
