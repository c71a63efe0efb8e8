"""The weightless ``preview`` backend: a real animatic, drawn deterministically, on any machine.

Keyframes are a seeded background (palette from the prompt, shapes from the seed) with a card showing the shot's
prompt, id and timecode, drawn where the shot's camera move keeps it in view. Chunks animate between the shot's
keyframes (each holds, then a short dissolve into the next, so one card is readable at a time) through the camera
move, with the output frame number burned in. A chunk is a pure function of time, so
overlapping chunks agree exactly and the render exercises chunking, blending and stitching without a model.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import math
import textwrap
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

import longvid.timing as timing
from longvid.stages.base import StageSpec
from longvid.stitching.blend import mix
from longvid.tasks import KeyframeParams, PreviewChunkParams, ReferenceParams, Task

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


def view_box(camera: str, progress: float, width: int, height: int) -> tuple[float, float, float, float]:
    """The part of a keyframe (left, top, right, bottom, in its pixels) a camera move shows at `progress` (0 to 1)
    through the shot."""
    start, end = _CAMERA[camera]
    cx, cy, zoom = (a + (b - a) * progress for a, b in zip(start, end, strict=True))
    crop_w, crop_h = width / max(zoom, 1.0), height / max(zoom, 1.0)
    x0 = min(max(cx * width - crop_w / 2, 0), width - crop_w)
    y0 = min(max(cy * height - crop_h / 2, 0), height - crop_h)
    return x0, y0, x0 + crop_w, y0 + crop_h


def safe_area(camera: str, width: int, height: int, steps: int = 16) -> tuple[int, int, int, int]:
    """The part of a keyframe in view all through the camera move: where its card is drawn, so no pan or push
    ever cuts it off."""
    boxes = [view_box(camera, i / steps, width, height) for i in range(steps + 1)]
    return (math.ceil(max(b[0] for b in boxes)), math.ceil(max(b[1] for b in boxes)),
            math.floor(min(b[2] for b in boxes)), math.floor(min(b[3] for b in boxes)))


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def fit_image(path: str, width: int, height: int) -> np.ndarray:
    """A user's keyframe image, cropped to the video's aspect and resized (the stage of any keyframe backend)."""
    with Image.open(path) as user_image:
        fitted = ImageOps.fit(user_image.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
    return np.asarray(fitted, dtype=np.uint8).copy()


@dataclass(frozen=True)
class CardLayout:
    """Where a keyframe's card lies: its text box, and the reference thumbnails above it."""

    left: int
    right: int
    top: float  # of the thumbnails (the card's when there are none)
    card_top: float
    bottom: float
    lines: tuple[str, ...]
    line_height: float
    thumb: int  # the thumbnails' side
    thumbs: int  # how many fit
    fonts: tuple


@functools.lru_cache(maxsize=256)
def card_layout(prompt: str, references: int, camera: str, width: int, height: int) -> CardLayout:
    """The card of a keyframe showing `prompt` with `references` thumbnails: drawn by the keyframe, and the part
    of the picture a chunk changes with a short dissolve."""
    left, top, right, bottom = safe_area(camera, width, height)
    head_font, body_font = _font(max(8, height // 22)), _font(max(8, height // 18))
    margin = (right - left) // 12
    x0, x1 = left + margin, right - margin
    chars = max(10, int((x1 - x0 - height // 20) / (body_font.getlength("abcdefghij") / 10)))
    lines = tuple(textwrap.wrap(prompt, chars)[:5])
    line_h = body_font.size * 1.3
    box_h = head_font.size * 1.8 + line_h * len(lines) + height // 20
    card_top = max(top + height / 40, min(top + (bottom - top) * 0.62 - box_h / 2, bottom - box_h - height / 20))
    side = max(8, min(height // 4, int(card_top - top) - height // 20))
    fit = max(0, (x1 - x0 + height // 40) // (side + height // 40))
    shown = min(references, fit)
    above = side + height / 40 + head_font.size if shown else 0
    return CardLayout(x0, x1, card_top - above, card_top, card_top + box_h, lines, line_h, side, shown,
                      (head_font, body_font))


class PreviewKeyframe:
    """Draws a keyframe card (with the references of who and where it shows), or loads the user's image.

    A later keyframe of a shot shows the same scene as its first: its background is the first keyframe's, softened.
    """

    spec = StageSpec(name="preview.keyframe", kind="keyframe", code_version="4", params=KeyframeParams,
                     inputs=("reference", "keyframe"), output="image")

    def __call__(self, task: Task, inputs: Mapping[str, object]) -> np.ndarray:
        # 1. check inputs
        p: KeyframeParams = task.params
        width, height = p.width, p.height
        if p.image:
            return fit_image(p.image.path, width, height)

        # 2. the background: the shot's first keyframe, or a new one
        if p.opening:
            scene = Image.fromarray(inputs[p.opening]).filter(ImageFilter.GaussianBlur(max(1, height // 60)))
            image = Image.blend(scene, _background(p.prompt, task.seed, width, height), 0.25).convert("RGBA")
        else:
            image = _background(p.prompt, task.seed, width, height).convert("RGBA")

        # 3. the card: shot, keyframe, timecode and the prompt, with thumbnails of the references above it; all of
        # it inside the part of the picture the shot's camera move keeps in view from start to end
        label = p.label
        card = Image.new("RGBA", (width, height))
        draw = ImageDraw.Draw(card)
        box = card_layout(p.prompt, len(p.references), p.camera or "static", width, height)
        head_font, body_font = box.fonts
        x0, x1, top_y = box.left, box.right, box.card_top
        draw.rounded_rectangle((x0, top_y, x1, box.bottom), radius=height // 40, fill=(0, 0, 0, 150))
        heading = f"{label.shot}  ·  keyframe {label.keyframe}  ·  {label.timecode}"
        draw.text((x0 + height // 40, top_y + height // 40), heading, font=head_font, fill=(255, 220, 120, 255))
        for n, line in enumerate(box.lines):
            y = top_y + head_font.size * 1.8 + height // 40 + n * box.line_height
            draw.text((x0 + height // 40, y), line, font=body_font, fill=(255, 255, 255, 255))
        side = box.thumb
        for n, reference in enumerate(p.references[:box.thumbs]):
            thumb = Image.fromarray(inputs[reference][0]).resize((side, side), Image.Resampling.BILINEAR)
            x = x0 + n * (side + height // 40)
            card.paste(thumb.convert("RGBA"), (x, int(top_y) - side - height // 40))
            draw.text((x, int(top_y) - height // 40 - head_font.size), reference.split(":", 1)[1], font=head_font,
                      fill=(255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(image, card).convert("RGB"), dtype=np.uint8).copy()


def _background(prompt: str, seed: int | None, width: int, height: int) -> Image.Image:
    """A seeded background: a palette from the prompt, soft shapes from the seed."""
    rng = np.random.default_rng(seed)
    hue = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:2], "big") / 65535
    top = np.array(colorsys.hsv_to_rgb(hue, 0.55, 0.35)) * 255
    bottom = np.array(colorsys.hsv_to_rgb((hue + 0.08) % 1, 0.45, 0.85)) * 255
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    image = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).copy()).convert("RGBA")
    # soft shapes, drawn and blurred at a quarter of the size (the blur dominated the cost), then enlarged
    q = 4
    shapes = Image.new("RGBA", (max(1, width // q), max(1, height // q)))
    draw = ImageDraw.Draw(shapes)
    for _ in range(14):
        x, y = rng.uniform(0, width) / q, rng.uniform(0, height) / q
        r = rng.uniform(0.03, 0.16) * min(width, height) / q
        shade = colorsys.hsv_to_rgb((hue + rng.uniform(-0.15, 0.15)) % 1, rng.uniform(0.3, 0.8), rng.uniform(0.5, 1))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*(int(c * 255) for c in shade), int(rng.uniform(60, 150))))
    shapes = shapes.filter(ImageFilter.GaussianBlur(max(1, height // 120) / q + 0.5))
    return Image.alpha_composite(image, shapes.resize((width, height), Image.Resampling.BILINEAR)).convert("RGB")


def fit_square(path: str, size: int) -> np.ndarray:
    """A reference image, whole, inside a `size` square (padded with grey): a character sheet keeps its feet."""
    with Image.open(path) as picture:
        fitted = ImageOps.pad(picture.convert("RGB"), (size, size), Image.Resampling.LANCZOS, color=(128, 128, 128))
    return np.asarray(fitted, dtype=np.uint8).copy()


class PreviewReference:
    """A character's or place's reference: the user's images, or a card with its name and description."""

    spec = StageSpec(name="preview.reference", kind="reference", code_version="1", params=ReferenceParams,
                     output="frames")

    def __call__(self, task: Task, inputs: Mapping[str, object]) -> np.ndarray:
        p: ReferenceParams = task.params
        if p.images:
            return np.stack([fit_square(image.path, p.size) for image in p.images])
        card = _background(p.description, task.seed, p.size, p.size)
        draw = ImageDraw.Draw(card)
        head, body = _font(max(8, p.size // 10)), _font(max(8, p.size // 16))
        margin = p.size // 12
        draw.text((margin, margin), f"{p.entity}: {p.name}", font=head, fill=(255, 220, 120))
        chars = max(8, int((p.size - 2 * margin) / (body.getlength("abcdefghij") / 10)))
        for n, line in enumerate(textwrap.wrap(p.description, chars)[:8]):
            draw.text((margin, margin + head.size * 1.8 + n * body.size * 1.3), line, font=body, fill=(255, 255, 255))
        return np.asarray(card, dtype=np.uint8)[None].copy()


class PreviewChunk:
    """Animates between keyframes through the camera move; returns ``frames`` frames (F x H x W x 3).

    Not stored: drawing a frame again costs less than writing it losslessly and reading it back, so the task that
    reads a chunk draws it, and only the frames it needs (`window`). Low-memory mode (the retry after an
    out-of-memory error) yields the frames one at a time instead of returning them as one array.
    """

    spec = StageSpec(name="preview.chunk", kind="chunk", code_version="5", params=PreviewChunkParams,
                     inputs=("keyframe",), output="frames", low_memory={"low_memory": {"stream_frames": True}}, cache=False)

    RECENT = 12  # frames kept: where two chunks overlap, the second draws nothing (they show the same frames)

    def __init__(self):
        self._recent: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def __call__(self, task: Task, inputs: Mapping[str, np.ndarray]) -> np.ndarray | Iterator[np.ndarray]:
        p: PreviewChunkParams = task.params
        frames = self._frames(p, inputs, 0, p.frames)
        if p.low_memory.get("stream_frames"):
            return frames
        return np.stack(list(frames))

    def window(self, task: Task, inputs: Mapping[str, np.ndarray], lo: int, hi: int) -> list[np.ndarray]:
        """Frames ``[lo, hi)`` of the chunk, the same as those of the whole chunk (each is a function of time);
        a list, not one array: stacking would copy every frame once more."""
        return list(self._frames(task.params, inputs, lo, hi))

    def _frames(self, p: PreviewChunkParams, inputs: Mapping[str, np.ndarray], lo: int, hi: int) -> Iterator[np.ndarray]:
        # 1. check inputs, and prepare each keyframe for the camera once per worker: a camera that does not zoom
        # crops the same enlargement of it (a slice, as an array); one that zooms samples the nearest pixels of a
        # master enlarged 1.5x, which looks nearly as smooth as a bilinear resize of every frame at a fifth of the cost
        width, height = p.width, p.height
        start_pose, end_pose = _CAMERA[p.camera]
        zooms = start_pose[2] != end_pose[2]
        scale = 1.5 if zooms else start_pose[2]
        size = (round(width * scale), round(height * scale))

        def prepared(task: str) -> Image.Image | np.ndarray:
            image = Image.fromarray(inputs[task])
            image = image if image.size == size else image.resize(size, Image.Resampling.BILINEAR)
            return image if zooms else np.asarray(image)

        keys = [(kf.at, _derived(inputs, kf.task, ("preview.camera", size), lambda t=kf.task: prepared(t)))
                for kf in p.keyframes]
        times = [at for at, _ in keys]

        # 2. generate (a frame is a function of time and of the keyframes around it: a recent one is reused)
        contents = [inputs.content_key(kf.task) if hasattr(inputs, "content_key") else None for kf in p.keyframes]
        for frame_index in range(p.start + lo, p.start + hi):
            t = p.t0 + frame_index * p.dt
            shown = _showing(times, t)  # (keyframe, scene weight, card weight)
            memo = None
            if None not in contents:
                around = tuple((times[i], contents[i], round(w, 9), round(c, 9)) for i, w, c in shown)
                memo = (p.width, p.height, p.camera, p.duration, p.t0, p.dt, p.fps, p.label, frame_index, around)
                if memo in self._recent:
                    yield self._recent[memo]
                    continue
            progress = t / p.duration
            if zooms:
                seen = view_box(p.camera, progress, width, height)
                box = tuple(v * scale for v in seen)
                views = [np.array(keys[i][1].resize((width, height), Image.Resampling.NEAREST, box=box))
                         for i, _, _ in shown]
            else:
                cx, cy, _ = (a + (b - a) * progress for a, b in zip(start_pose, end_pose, strict=True))
                x0 = min(max(round(cx * size[0] - width / 2), 0), size[0] - width)
                y0 = min(max(round(cy * size[1] - height / 2), 0), size[1] - height)
                seen = (x0 / scale, y0 / scale, (x0 + width) / scale, (y0 + height) / scale)
                views = [keys[i][1][y0:y0 + height, x0:x0 + width] for i, _, _ in shown]
            if len(views) == 2:
                # the scene moves from one keyframe to the next all through the gap; the cards change quickly
                frame = mix(views[0], views[1], shown[1][1])
                cards = [p.keyframes[i] for i, _, _ in shown]
                if shown[1][2] != shown[1][1] and (area := _card_area(cards, p.camera, width, height, seen)):
                    rows, cols = area
                    frame = frame if frame is not views[0] else frame.copy()
                    frame[rows, cols] = mix(views[0][rows, cols], views[1][rows, cols], shown[1][2])
            else:
                frame = views[0] if zooms else views[0].copy()  # a slice of a kept keyframe: never drawn on
            if any(np.shares_memory(frame, image) for _, image in keys if isinstance(image, np.ndarray)):
                frame = frame.copy()
            # 3. burn in the shot, the timecode and the output frame number, on a strip pasted at the bottom
            output_frame = p.label.first_output_frame + round(frame_index * p.label.factor)
            burn = f"{p.label.shot}  {timing.frames_to_timecode(output_frame, p.fps)}  #{output_frame}"
            strip = _burn_in(burn, max(8, height // 30), width)
            frame[height - strip.shape[0]:, :strip.shape[1]] = strip
            if memo is not None:
                self._recent[memo] = frame
                if len(self._recent) > self.RECENT:
                    self._recent.popitem(last=False)
            yield frame


def _burn_in(text: str, size: int, width: int) -> np.ndarray:
    """White `text` on a black strip (at most `width` wide), set from glyphs rendered once per character: the
    burn-in changes every frame, and rasterising it anew each time cost as much as drawing the picture."""
    glyphs = [_glyph(ch, size) for ch in text]
    margin, height = max(1, size * 3 // 4), round(size * 1.9)
    strip = np.zeros((height, min(width, margin * 2 + sum(g.shape[1] for g in glyphs)), 3), np.uint8)
    x = margin
    for glyph in glyphs:
        w = min(glyph.shape[1], strip.shape[1] - x)
        if w <= 0:
            break
        region = strip[:glyph.shape[0], x:x + w]
        np.maximum(region, glyph[:, :w, None], out=region)
        x += glyph.shape[1]
    return strip


@functools.lru_cache(maxsize=512)
def _glyph(ch: str, size: int) -> np.ndarray:
    """One character, white on black, as tall as the strip, its advance wide."""
    font = _font(size)
    cell = Image.new("L", (max(1, round(font.getlength(ch))), round(size * 1.9)))
    ImageDraw.Draw(cell).text((0, round(size * 0.3)), ch, font=font, fill=255)
    glyph = np.asarray(cell)
    glyph.setflags(write=False)
    return glyph


def _derived(inputs: Mapping, task_id: str, what: tuple, make):
    """`make()`, kept by the worker when the inputs can keep it (see `Inputs.derived`)."""
    return inputs.derived(task_id, what, make) if hasattr(inputs, "derived") else make()


CARD_DISSOLVE = 0.5  # seconds: the longest change from one keyframe's card to the next


def _showing(times: list[float], t: float) -> list[tuple[int, float, float]]:
    """What shows at time t, as ``(keyframe index, scene weight, card weight)``: the keyframe at t, or the two
    around it. The second's scene weight is a smoothstep over the whole gap (the picture moves from one keyframe to
    the next, as a video model's would); its card's is a smoothstep over the gap's last `CARD_DISSOLVE` seconds
    (a third of the gap when that is shorter), so one card is readable at a time and the next is whole at its time."""
    after = next((i for i, at in enumerate(times) if at > t), len(times))
    if after == 0 or after == len(times):
        return [(min(after, len(times) - 1), 1.0, 1.0)]
    gap = times[after] - times[after - 1]
    x = (t - times[after - 1]) / gap
    if x <= 0:
        return [(after - 1, 1.0, 1.0)]
    dissolve = min(CARD_DISSOLVE, gap / 3)
    c = min(1.0, max(0.0, (t - (times[after] - dissolve)) / dissolve))
    return [(after - 1, 1.0, 1.0), (after, x * x * (3 - 2 * x), c * c * (3 - 2 * c))]


def _card_area(keyframes, camera: str, width: int, height: int, seen: tuple) -> tuple[slice, slice] | None:
    """The rows and columns of a frame that hold the cards of `keyframes` (their union), seen through the view
    `seen` (the part of the keyframe in the frame); None when neither has a card (users' images)."""
    layouts = [card_layout(k.card, k.references, camera, width, height) for k in keyframes if k.card is not None]
    if not layouts:
        return None
    left, top = min(c.left for c in layouts), min(c.top for c in layouts)
    right, bottom = max(c.right for c in layouts), max(c.bottom for c in layouts)
    sx, sy = width / (seen[2] - seen[0]), height / (seen[3] - seen[1])
    rows = slice(max(0, math.floor((top - seen[1]) * sy)), min(height, math.ceil((bottom - seen[1]) * sy) + 1))
    cols = slice(max(0, math.floor((left - seen[0]) * sx)), min(width, math.ceil((right - seen[0]) * sx) + 1))
    return rows, cols
