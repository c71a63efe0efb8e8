"""The weightless ``preview`` backend: a real animatic, drawn deterministically, on any machine.

Keyframes are a seeded background (palette from the prompt, shapes from the seed) with a card showing the shot's
prompt, id and timecode. Chunks animate between the shot's keyframes (a smooth crossfade from one to the next)
through the shot's camera move, with the output frame number burned in. A chunk is a pure function of time, so
overlapping chunks agree exactly and the render exercises chunking, blending and stitching without a model.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import textwrap
from collections.abc import Iterator, Mapping

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from longvid import timing
from longvid.graph import Task
from longvid.stages.base import StageSpec

# Camera moves as (centre x, centre y, zoom) at progress 0 and 1 through the shot; zoom >= 1 crops the keyframe.
_CAMERA = {
    "static": ((0.5, 0.5, 1.0), (0.5, 0.5, 1.0)),
    "push-in": ((0.5, 0.5, 1.0), (0.5, 0.45, 1.3)),
    "zoom-in": ((0.5, 0.5, 1.0), (0.5, 0.5, 1.3)),
    "pull-out": ((0.5, 0.45, 1.3), (0.5, 0.5, 1.0)),
    "zoom-out": ((0.5, 0.5, 1.3), (0.5, 0.5, 1.0)),
    "pan-left": ((0.6, 0.5, 1.25), (0.4, 0.5, 1.25)),
    "pan-right": ((0.4, 0.5, 1.25), (0.6, 0.5, 1.25)),
    "tilt-up": ((0.5, 0.6, 1.25), (0.5, 0.4, 1.25)),
    "tilt-down": ((0.5, 0.4, 1.25), (0.5, 0.6, 1.25)),
}


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def fit_image(path: str, width: int, height: int) -> np.ndarray:
    """A user's keyframe image, cropped to the video's aspect and resized (the stage of any keyframe backend)."""
    with Image.open(path) as user_image:
        fitted = ImageOps.fit(user_image.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
    return np.asarray(fitted, dtype=np.uint8).copy()


class PreviewKeyframe:
    """Draws a keyframe card, or loads the user's image."""

    spec = StageSpec(name="preview.keyframe", kind="keyframe", code_version="1", output="image")

    def __call__(self, task: Task, inputs: Mapping[str, object]) -> np.ndarray:
        # 1. check inputs
        p = task.params
        width, height = p["width"], p["height"]
        if p.get("image"):
            return fit_image(p["image"]["_path"], width, height)

        # 2. background: palette from the prompt, shapes from the seed
        rng = np.random.default_rng(task.seed)
        hue = int.from_bytes(hashlib.sha256(p["prompt"].encode()).digest()[:2], "big") / 65535
        top = np.array(colorsys.hsv_to_rgb(hue, 0.55, 0.35)) * 255
        bottom = np.array(colorsys.hsv_to_rgb((hue + 0.08) % 1, 0.45, 0.85)) * 255
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        sky = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
        image = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).copy()).convert("RGBA")
        shapes = Image.new("RGBA", (width, height))
        draw = ImageDraw.Draw(shapes)
        for _ in range(14):
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(0.03, 0.16) * min(width, height)
            shade = colorsys.hsv_to_rgb((hue + rng.uniform(-0.15, 0.15)) % 1, rng.uniform(0.3, 0.8), rng.uniform(0.5, 1))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(*(int(c * 255) for c in shade), int(rng.uniform(60, 150))))
        image = Image.alpha_composite(image, shapes.filter(ImageFilter.GaussianBlur(max(1, height // 120))))

        # 3. the card: shot, keyframe, timecode and the prompt
        label = p["label"]
        card = Image.new("RGBA", (width, height))
        draw = ImageDraw.Draw(card)
        head_font, body_font = _font(max(8, height // 22)), _font(max(8, height // 18))
        margin = width // 10
        chars = max(10, int((width - 2 * margin) / (body_font.getlength("abcdefghij") / 10)))
        lines = textwrap.wrap(p["prompt"], chars)[:5]
        line_h = body_font.size * 1.3
        box_h = head_font.size * 1.8 + line_h * len(lines) + height // 20
        top_y = height * 0.62 - box_h / 2
        draw.rounded_rectangle((margin, top_y, width - margin, top_y + box_h), radius=height // 40, fill=(0, 0, 0, 150))
        heading = f"{label['shot']}  ·  keyframe {label['keyframe']}  ·  {label['timecode']}"
        draw.text((margin + height // 40, top_y + height // 40), heading, font=head_font, fill=(255, 220, 120, 255))
        for n, line in enumerate(lines):
            y = top_y + head_font.size * 1.8 + height // 40 + n * line_h
            draw.text((margin + height // 40, y), line, font=body_font, fill=(255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(image, card).convert("RGB"), dtype=np.uint8).copy()


class PreviewChunk:
    """Animates between keyframes through the camera move; returns ``frames`` frames (F x H x W x 3).

    Low-memory mode (the retry after an out-of-memory error) streams the frames into the cache one at a time
    instead of returning them as one array.
    """

    spec = StageSpec(name="preview.chunk", kind="chunk", code_version="1", inputs=("keyframe",), output="frames",
                     low_memory={"stream_frames": True})

    def __call__(self, task: Task, inputs: Mapping[str, np.ndarray]) -> np.ndarray | Iterator[np.ndarray]:
        # 1. check inputs
        p = task.params
        keys = [(kf["at"], Image.fromarray(inputs[kf["task"]])) for kf in p["keyframes"]]
        if not keys:
            raise ValueError(f"{task.id}: a preview chunk needs at least one keyframe")
        # 2. generate
        frames = self._frames(p, keys)
        if p.get("low_memory", {}).get("stream_frames"):
            return frames
        return np.stack(list(frames))

    @staticmethod
    def _frames(p: Mapping, keys: list[tuple[float, Image.Image]]) -> Iterator[np.ndarray]:
        width, height = p["width"], p["height"]
        start_pose, end_pose = _CAMERA[p["camera"]]
        label = p["label"]
        font = _font(max(8, height // 30))
        for i in range(p["frames"]):
            frame_index = p["start"] + i
            t = p["t0"] + frame_index * p["dt"]
            picture = _between_keyframes(keys, t)
            progress = t / p["duration"]
            cx, cy, zoom = (a + (b - a) * progress for a, b in zip(start_pose, end_pose, strict=True))
            crop_w, crop_h = width / max(zoom, 1.0), height / max(zoom, 1.0)
            x0 = min(max(cx * width - crop_w / 2, 0), width - crop_w)
            y0 = min(max(cy * height - crop_h / 2, 0), height - crop_h)
            if zoom <= 1.0:
                frame = picture.copy()  # nothing to crop; resampling would only cost time
            else:
                box = (x0, y0, x0 + crop_w, y0 + crop_h)
                frame = picture.resize((width, height), Image.Resampling.BILINEAR, box=box)
            output_frame = label["first_output_frame"] + round(frame_index * label["factor"])
            burn = f"{label['shot']}  {timing.frames_to_timecode(output_frame, p['fps'])}  #{output_frame}"
            draw = ImageDraw.Draw(frame)
            x, y = height // 40, height - font.size * 1.6
            draw.rectangle((0, y - font.size * 0.3, x * 2 + font.getlength(burn), height), fill=(0, 0, 0))
            draw.text((x, y), burn, font=font, fill=(255, 255, 255))
            yield np.asarray(frame)


def _between_keyframes(keys: list[tuple[float, Image.Image]], t: float) -> Image.Image:
    """The keyframe at time t, or a smoothstep crossfade of the two around it."""
    if t <= keys[0][0]:
        return keys[0][1]
    for (t_a, a), (t_b, b) in zip(keys, keys[1:], strict=False):
        if t < t_b:
            x = (t - t_a) / (t_b - t_a)
            return Image.blend(a, b, x * x * (3 - 2 * x))
    return keys[-1][1]
