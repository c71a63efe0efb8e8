"""Edits from the studio, written back into the storyboard YAML with its comments, order and formatting kept.

Every edit is applied to a round-trip copy of the file (ruamel.yaml; a JSON storyboard is written back as JSON), the result is validated exactly as
`longvid validate` would read it (the same ``file:line:col`` messages), and only then written, atomically. An edit
made against an older version of the file (someone saved it in another editor meanwhile) is refused, never merged
over the other change.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from longvid._imports import require
from longvid.cache import write_atomic
from longvid.errors import StoryboardError, UserError
from longvid.planners.compile import compile_storyboard
from longvid.storyboard import StoryboardSpec, parse_storyboard

# What the page may change on a shot; everything else in the file is left as it is.
EDITABLE = ("prompt", "duration", "camera", "keyframes", "transition")
TAKE_TASK = re.compile(r"^(keyframe|chunk):(.+):(\d+)$")


class EditConflict(UserError):
    """The file changed on disk since the page read it: the edit is refused, the other change kept."""


class InvalidEdit(UserError):
    """The edit would make the storyboard invalid; the file is left as it was."""

    def __init__(self, problems: list):
        self.problems = [str(p) for p in problems]
        super().__init__("; ".join(self.problems))


def version_of(text: str) -> str:
    """A file's version, as the page holds it: the hash of its bytes."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StoryboardFile:
    """One storyboard file, read and edited by the studio."""

    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()

    def read(self) -> tuple[str, str]:
        """The file's text and version."""
        text = self.path.read_text(encoding="utf-8")
        return text, version_of(text)

    def spec(self, text: str | None = None) -> StoryboardSpec:
        """The storyboard as it is on disk (or `text`, read from it), validated (StoryboardError with every
        problem if it is not valid)."""
        return parse_storyboard(self.read()[0] if text is None else text, self.path)

    def edit_shot(self, shot_id: str, changes: dict[str, Any], version: str) -> str:
        """Change some of a shot's `EDITABLE` fields (None removes one, back to its default).

        Returns:
            The file's new version.

        Raises:
            EditConflict: `version` is not the file's version on disk.
            InvalidEdit: the edited storyboard does not validate; nothing is written.
            UserError: an unknown shot or field.
        """
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise UserError(f"the studio edits a shot's {', '.join(EDITABLE)}; not {', '.join(unknown)}")
        return self._change(version, lambda doc, ids: self._apply(doc, ids, shot_id, changes))

    def take_of(self, task: str) -> int:
        """The take a keyframe or chunk task is on now (0: the original)."""
        kind, shot_id, index = _take_task(task)
        shot = next((s for s in self.spec().shots if s.shot_id == shot_id), None)
        if shot is None:
            raise UserError(f"no shot {shot_id!r} in {self.path.name}")
        return shot.take(kind, int(index))

    def set_take(self, task: str, take: int, version: str) -> str:
        """Record a take of a keyframe or chunk task (`reroll` on its shot; take 0 removes the entry).

        Returns:
            The file's new version.
        """
        kind, shot_id, index = _take_task(task)
        if take < 0:
            raise UserError(f"a take is 0 (the original) or more (got {take})")
        name = f"{kind}:{index}"

        def apply(doc, ids: list[str]) -> int:
            index, shot = self._shot(doc, ids, shot_id)
            rolls = shot.get("reroll") or {}
            if take:
                if "reroll" not in shot:
                    shot["reroll"] = _flow_map() if hasattr(shot, "fa") else {}
                shot["reroll"][name] = take
            elif name in rolls:
                del rolls[name]
                if not rolls:
                    del shot["reroll"]
            return index

        return self._change(version, apply)

    # ------------------------------------------------------------------------------------------ internals

    def _change(self, version: str, apply) -> str:
        # 1. the page must have seen the file as it is now
        if not isinstance(version, str):
            raise UserError("an edit names the version of the file it was made on (`version`, from /api/state)")
        text, current = self.read()
        if version != current:
            raise EditConflict(f"{self.path.name} changed on disk since the page read it (edited elsewhere?): the "
                               f"page shows it again; make the edit again")
        # 2. the edit, on a round-trip copy (a JSON storyboard stays JSON: it has no comments to keep); shots are
        #    found by their ids, which the spec fills in (shot01, shot02, ...) where the file has none
        ids = [s.shot_id for s in self.spec(text).shots]
        if self.path.suffix.lower() == ".json":
            doc = json.loads(text)
            apply(doc, ids)
            new = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        else:
            yaml = _round_trip(text)
            doc = yaml.load(text)
            shot = apply(doc, ids)
            out = io.StringIO()
            yaml.dump(doc, out)
            new = _splice(yaml, text, out.getvalue(), shot)
        # 3. valid as `longvid validate` would find it (planning included), or nothing is written
        try:
            compile_storyboard(parse_storyboard(new, self.path))
        except StoryboardError as exc:
            raise InvalidEdit(exc.problems) from None
        # 4. written atomically, unless another editor saved meanwhile
        if self.read()[1] != current:
            raise EditConflict(f"{self.path.name} changed on disk while the edit was checked: the page shows it "
                               f"again; make the edit again")
        mode = self.path.stat().st_mode
        write_atomic(self.path, new)
        os.chmod(self.path, mode & 0o7777)
        return version_of(new)

    def _shot(self, doc, ids: list[str], shot_id: str):
        shots = doc.get("shots") if hasattr(doc, "get") else None
        if not shots or shot_id not in ids:
            raise UserError(f"no shot {shot_id!r} in {self.path.name} (shots: {', '.join(ids)})")
        return ids.index(shot_id), shots[ids.index(shot_id)]

    def _apply(self, doc, ids: list[str], shot_id: str, changes: dict[str, Any]) -> int:
        index, shot = self._shot(doc, ids, shot_id)
        for field, value in changes.items():
            _assign(shot, field, value)
        return index


def _take_task(task: str) -> tuple[str, str, str]:
    match = TAKE_TASK.match(task)
    if match is None:
        raise UserError(f"only a keyframe or a chunk has takes (got {task!r}: expected keyframe:SHOT:I or "
                        f"chunk:SHOT:I)")
    return match.group(1), match.group(2), match.group(3)


def _round_trip(text: str):
    ruamel = require("ruamel.yaml", extra="studio", feature="the studio's edits")
    yaml = ruamel.YAML()  # round-trip: comments, key order, quoting and flow style survive
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a user's long prompt
    mapping, sequence, offset = _indentation(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _splice(yaml, old: str, new: str, index: int) -> str:
    """The old text with only shot `index`'s lines taken from the new one: ruamel re-flows some things it does not
    change (a flow mapping wrapped over two lines), so the rest of the file is kept byte for byte."""
    try:
        a0, a1 = _shot_lines(yaml.load(old), old, index)
        b0, b1 = _shot_lines(yaml.load(new), new, index)
    except (AttributeError, KeyError, IndexError, TypeError):
        return new  # a flow-style `shots: [...]`: the whole dump
    old_lines, new_lines = old.splitlines(True), new.splitlines(True)
    return "".join(old_lines[:a0] + new_lines[b0:b1] + old_lines[a1:])


def _shot_lines(doc, text: str, index: int) -> tuple[int, int]:
    """The lines ``[start, end)`` of shot `index` in a block-style ``shots`` list (its trailing comments too)."""
    shots = doc["shots"]
    if shots.fa.flow_style():
        raise TypeError("flow-style shots")
    start = shots.lc.item(index)[0]
    if index + 1 < len(shots):
        return start, shots.lc.item(index + 1)[0]
    keys = list(doc)
    after = keys[keys.index("shots") + 1:]
    return start, doc.lc.key(after[0])[0] if after else len(text.splitlines())


def _indentation(text: str) -> tuple[int, int, int]:
    """How the file indents: a nested mapping, a list's items (its dash and what follows) and the dash under its
    key (``shots:`` then ``  - id:`` is 2, 4, 2), read from the first of each it has: ruamel writes what it is
    told, not what it read."""
    mapping = sequence = offset = None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for line, following in zip(lines, lines[1:], strict=False):
        if not re.match(r"^\s*[^\s#-][^#]*:\s*(#.*)?$", line):
            continue  # only a key whose value starts on the next line
        step = (len(following) - len(following.lstrip())) - (len(line) - len(line.lstrip()))
        item = re.match(r"^\s*-(\s+)\S", following)
        if item and offset is None:
            offset, sequence = max(step, 0), max(step, 0) + 1 + len(item.group(1))
        elif not item and step > 0 and mapping is None:
            mapping = step
        if mapping is not None and offset is not None:
            break
    return mapping or 2, sequence or 2, offset or 0
def _flow_map():
    from ruamel.yaml.comments import CommentedMap

    m = CommentedMap()
    m.fa.set_flow_style()
    return m


def _assign(node, key, value) -> None:
    """Set ``node[key]`` to plain `value`, changing the existing YAML in place so its comments and styles stay."""
    old = node.get(key) if hasattr(node, "get") else node[key] if key < len(node) else None
    if value is None:
        if hasattr(node, "get") and key in node:
            del node[key]
        return
    if isinstance(value, dict) and hasattr(old, "items"):
        for k in [k for k in old if k not in value]:
            del old[k]
        for k, v in value.items():
            _assign(old, k, v)
    elif isinstance(value, list) and isinstance(old, list):
        del old[len(value):]
        for i, v in enumerate(value):
            if i < len(old):
                _assign(old, i, v)
            else:
                old.append(v)
    elif isinstance(value, str) and isinstance(old, str) and type(old) is not str:
        node[key] = type(old)(value)  # a quoted or block string stays quoted or block
    else:
        node[key] = value
