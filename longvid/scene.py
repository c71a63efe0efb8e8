"""The Python scene-graph API: build a storyboard in code.

```python
import longvid

story = longvid.Storyboard("The Lighthouse Keeper", fps=24, width=832, height=480, seed=1234,
                           style="cinematic, 35mm film, moody light")
story.character("keeper", "an old lighthouse keeper with a grey beard and a yellow raincoat")
story.shot("establishing", "a lighthouse on a cliff at dusk, waves crashing", duration=4, camera="push-in")
story.shot("climb", "{keeper} climbs the spiral stairs holding a lantern", duration=6) \\
    .keyframe(at=6, prompt="{keeper} reaches the lamp room").crossfade(0.5)
story.shot("storm", "storm clouds gather over the sea, lightning", duration=5)
longvid.render(story, "lighthouse.mp4")
```

The builder only collects data; `build()` validates it through the same code as a YAML file, so the two paths
give the same storyboard and the same shot graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longvid.storyboard import StoryboardSpec, validate_data


class Shot:
    """One shot being built; its methods return the shot, so calls chain."""

    def __init__(self, data: dict[str, Any]):
        self._data = data

    @property
    def id(self) -> str:
        return self._data["id"]

    def keyframe(self, at: float, prompt: str | None = None, image: str | Path | None = None) -> Shot:
        """Pin the shot at `at` seconds from its start to a prompt, or to a user image."""
        entry: dict[str, Any] = {"at": at}
        if prompt is not None:
            entry["prompt"] = prompt
        if image is not None:
            entry["image"] = str(image)
        self._data.setdefault("keyframes", []).append(entry)
        return self

    def crossfade(self, duration: float) -> Shot:
        """End the shot with a crossfade of `duration` seconds into the next one."""
        self._data["transition"] = {"type": "crossfade", "duration": duration}
        return self

    def cut(self) -> Shot:
        """End the shot with a cut (the default)."""
        self._data.pop("transition", None)
        return self


class Storyboard:
    """A storyboard built in code. Arguments are the storyboard fields of the YAML format."""

    def __init__(self, title: str = "Untitled", *, fps: float = 24, width: int = 832, height: int = 480,
                 seed: int = 0, style: str = "", negative_prompt: str = "", models: dict | None = None,
                 continuity: dict | None = None, qa: dict | None = None, audio: dict | None = None,
                 base_dir: str | Path | None = None):
        self._data: dict[str, Any] = {"title": title, "fps": fps, "width": width, "height": height, "seed": seed,
                                      "style": style, "negative_prompt": negative_prompt, "characters": {},
                                      "shots": []}
        if models is not None:
            self._data["models"] = models
        if continuity is not None:
            self._data["continuity"] = continuity
        if qa is not None:  # e.g. {"identity_model": "openai/clip-vit-large-patch14"}
            self._data["qa"] = qa
        if audio is not None:  # e.g. {"music": {"file": "theme.wav", "gain_db": -8}, "loudness": -14}
            self._data["audio"] = audio
        self._base_dir = Path(base_dir) if base_dir is not None else Path.cwd()

    def character(self, name: str, description: str, *, reference: str | Path | list | None = None,
                  lora: dict | None = None) -> Storyboard:
        """Define a character; ``{name}`` in any prompt expands to `description` and ties the shot to it.

        Args:
            reference: an image (or a list), relative to `base_dir`; without one, a reference is generated.
            lora: ``{"path", "weight", "trigger"}``, active in the keyframes where the character appears.
        """
        self._data["characters"][name] = _entity(description, reference, lora)
        return self

    def place(self, name: str, description: str, *, reference: str | Path | list | None = None,
              lora: dict | None = None) -> Storyboard:
        """Define a place (a set, a location), as `character` does."""
        self._data.setdefault("places", {})[name] = _entity(description, reference, lora)
        return self

    def shot(self, id: str, prompt: str, duration: float, *, camera: str = "static", seed: int | None = None,
             negative_prompt: str | None = None, sound: dict | None = None, voice: list[dict] | None = None,
             reroll: dict[str, int] | None = None) -> Shot:
        """Append a shot and return it, for keyframes and a transition.

        Args:
            sound: ``{"file"}`` or ``{"prompt"}``, with ``gain_db``, ``fade_in``, ``fade_out``, ``loop``.
            voice: lines ``{"file", "at", "gain_db"}``, `at` seconds after the shot's cut.
            reroll: another take of some of its tasks, ``{"chunk:2": 1, "keyframe:0": 3}``: a task's kind and
                index in the shot -> a take number (0: the original seed).
        """
        data: dict[str, Any] = {"id": id, "prompt": prompt, "duration": duration, "camera": camera}
        if sound is not None:
            data["sound"] = sound
        if voice is not None:
            data["voice"] = voice
        if seed is not None:
            data["seed"] = seed
        if negative_prompt is not None:
            data["negative_prompt"] = negative_prompt
        if reroll is not None:
            data["reroll"] = dict(reroll)
        self._data["shots"].append(data)
        return Shot(data)

    def build(self) -> StoryboardSpec:
        """Validate and return the storyboard.

        Raises:
            StoryboardError: every problem, located by path such as ``shots[1].duration``.
        """
        return validate_data(self._data, base_dir=self._base_dir.resolve())

    def to_yaml(self) -> str:
        """The storyboard as YAML, to save and render with the CLI."""
        return self.build().to_yaml()


def _entity(description: str, reference: str | Path | list | None, lora: dict | None) -> str | dict:
    if reference is None and lora is None:
        return description
    entity: dict[str, Any] = {"description": description}
    if reference is not None:
        entity["reference"] = [str(r) for r in reference] if isinstance(reference, list) else str(reference)
    if lora is not None:
        entity["lora"] = lora
    return entity
