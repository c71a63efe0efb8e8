"""Identity QA: how much each shot looks like its characters' references, by an image-embedding model.

The score of a frame against a character is the cosine similarity of their embeddings, the best over the
character's reference images: 1.0 for the reference itself. What counts as a good score depends on the model (a
CLIP vision model scores unrelated photographs around 0.4-0.6), so the threshold is the storyboard's
(`qa.identity_threshold`). The whole frame is compared, not a face crop.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from longvid._imports import require
from longvid.errors import ModelLoadError
from longvid.stages.base import Output, StageSpec
from longvid.stages.pipelines import device
from longvid.tasks import IdentityParams, Task


@functools.lru_cache(maxsize=2)
def embedder(path: str, where: str) -> tuple[Any, Any]:
    """(model, image processor) for `path`: the class its config names (e.g. ``CLIPVisionModelWithProjection``,
    as IP-Adapter image encoders are saved), else `AutoModel`."""
    transformers = require("transformers", extra="diffusers", feature="identity QA (qa.identity_model)")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        config = transformers.AutoConfig.from_pretrained(path)
        named = next((getattr(transformers, a, None) for a in config.architectures or []), None)
        model = (named or transformers.AutoModel).from_pretrained(path).to(where).eval()
        processor = transformers.AutoImageProcessor.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"qa.identity_model: cannot load {path!r} as an image-embedding model: {exc}. It needs "
                             f"a transformers config, weights and an image processor (preprocessor_config.json)"
                             ) from exc
    return model, processor


def embed(path: str, images: Sequence[np.ndarray]) -> np.ndarray:
    """Unit embeddings (N x D) of `images` (H x W x 3 uint8)."""
    import torch

    model, processor = embedder(path, device())
    inputs = processor(images=[Image.fromarray(i) for i in images], return_tensors="pt").to(model.device)
    with torch.no_grad():
        if hasattr(model, "get_image_features"):  # CLIP, SigLIP: the projected image embedding
            features = model.get_image_features(pixel_values=inputs["pixel_values"])
            features = getattr(features, "pooler_output", features)
        else:
            out = model(pixel_values=inputs["pixel_values"])
            features = next(f for f in (getattr(out, "image_embeds", None), getattr(out, "pooler_output", None),
                                        out.last_hidden_state[:, 0]) if f is not None)
    features = features.float().cpu().numpy().reshape(len(images), -1)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def likeness(frames: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Per frame, the best cosine similarity to any of the references (both unit embeddings), in [-1, 1]."""
    return np.clip(frames @ references.T, -1.0, 1.0).max(axis=1)


class IdentityQA:
    """Scores a shot's keyframes and sampled chunk frames against its characters' references; stores a contact
    sheet (a row per character: its reference, then the samples) and keeps the scores in its cache record."""

    spec = StageSpec(name="identity", kind="identity", code_version="1", params=IdentityParams,
                     inputs=("reference", "keyframe", "chunk", "decode", "refine"), output="image", resources={"gpus": 1})

    def __call__(self, task: Task, inputs: Any) -> Output:
        p: IdentityParams = task.params
        pictures = [_sample(inputs, s.task, s.frame) for s in p.samples]
        frames = embed(p.path, pictures)
        scores: dict[str, list[float]] = {}
        for ref in p.references:
            images = np.asarray(inputs[ref])
            images = images[None] if images.ndim == 3 else images
            scores[ref.split(":", 1)[1]] = [round(float(v), 4) for v in likeness(frames, embed(p.path, list(images)))]
        rows = [{"task": s.task, "frame": s.frame, "output_frame": s.output_frame,
                 "scores": {name: values[i] for name, values in scores.items()}} for i, s in enumerate(p.samples)]
        sheet = contact_sheet({ref: np.asarray(inputs[ref]) for ref in p.references}, pictures, scores, p.thumbnail)
        return Output(sheet, record={"identity": {"model": p.model, "samples": rows}})


def _sample(inputs: Any, task_id: str, frame: int) -> np.ndarray:
    if task_id.startswith("keyframe:"):
        return np.asarray(inputs[task_id])
    return np.asarray(inputs.frames(task_id, frame, frame + 1)[0])


def contact_sheet(references: Mapping[str, np.ndarray], samples: list[np.ndarray], scores: Mapping[str, list[float]],
                  side: int) -> np.ndarray:
    """Row per character: its first reference image, then every sample with its score underneath."""
    label = max(10, side // 5)
    sheet = Image.new("RGB", ((len(samples) + 1) * side, len(references) * (side + label)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for r, (ref, images) in enumerate(references.items()):
        y = r * (side + label)
        first = images[0] if images.ndim == 4 else images
        for c, picture in enumerate([first, *samples]):
            fitted = Image.fromarray(picture).copy()
            fitted.thumbnail((side, side))
            sheet.paste(fitted, (c * side + (side - fitted.width) // 2, y + (side - fitted.height) // 2))
            text = ref.split(":", 1)[1] if c == 0 else f"{scores[ref.split(':', 1)[1]][c - 1]:.2f}"
            draw.text((c * side + 2, y + side), text, fill=(230, 230, 230))
    return np.asarray(sheet, dtype=np.uint8).copy()
