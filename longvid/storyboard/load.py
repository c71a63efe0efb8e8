"""Reading storyboards: YAML (or JSON) with ``file:line:col`` on every problem, and plain data from the scene API.

Validation runs in two passes and reports every root cause it finds, never just the first:

1. structure: types, ranges and unknown keys, checked by pydantic field by field (`schema`);
2. meaning, once the structure is sound (`checks`).
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from longvid.errors import Problem, StoryboardError
from longvid.storyboard.checks import check_semantics, did_you_mean
from longvid.storyboard.schema import StoryboardSpec, TransitionSpec


def validate_data(data: Any, *, file: str | None = None, marks: Marks | None = None,
                  base_dir: Path | None = None) -> StoryboardSpec:
    """Validate plain data (from YAML, JSON or the scene API) into a `StoryboardSpec`.

    Raises:
        StoryboardError: with every problem found, located in `file` when `marks` are given.
    """
    marks = marks or Marks()
    if not isinstance(data, dict):
        raise StoryboardError([marks.locate(Problem("a storyboard is a mapping of settings with a `shots` list"), file)])
    try:
        spec = StoryboardSpec.model_validate(data)
    except ValidationError as exc:
        raise StoryboardError([marks.locate(p, file) for p in _structure_problems(exc)]) from None
    if base_dir is not None:
        spec._base_dir = base_dir
    if file is not None:
        spec._source, spec._file, spec._marks = str(Path(file).resolve()), file, marks
    problems = check_semantics(spec)
    if problems:
        raise StoryboardError([marks.locate(p, file) for p in problems])
    return spec


def load_storyboard(path: str | Path) -> StoryboardSpec:
    """Read and validate a storyboard YAML (or JSON) file.

    Raises:
        StoryboardError: every problem, as ``file:line:col: message``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoryboardError([Problem(f"storyboard file not found: {path}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoryboardError([Problem(f"cannot read storyboard {path}: {exc}")]) from None
    return parse_storyboard(text, path)


def parse_storyboard(text: str, path: str | Path) -> StoryboardSpec:
    """Validate storyboard text as if it were the file at `path` (its problems located there, its relative paths
    read from its folder): how an edit is checked before it is written.

    Raises:
        StoryboardError: every problem, as ``file:line:col: message``.
    """
    path = Path(path)
    loader = yaml.SafeLoader(text)  # parsed once: the nodes give the positions, and the data is built from them
    marks = Marks()
    try:
        node = loader.get_single_node()
        duplicates = marks.walk(node, ())  # before the data is built, which flattens merge keys (<<) into the nodes
        data = loader.construct_document(node) if node is not None and not duplicates else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"YAML syntax error: {exc.problem or exc.context}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise StoryboardError([Problem(message, (), str(path), line, col)]) from None
    finally:
        loader.dispose()
    if duplicates:
        raise StoryboardError([marks.locate(p, str(path)) for p in duplicates])
    return validate_data(data, file=str(path), marks=marks, base_dir=path.resolve().parent)


def json_schema() -> dict:
    """The JSON Schema of the storyboard format, for editors' autocompletion."""
    schema = StoryboardSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    # The loader also takes the bare word `cut` for a transition; say so, or editors flag valid files.
    shot = schema["$defs"]["ShotSpec"]["properties"]
    shot["transition"] = {"anyOf": [{"$ref": "#/$defs/TransitionSpec"}, {"enum": ["cut"]}],
                          "description": TransitionSpec.__doc__}
    # a `reroll` key that names no task is an error, not an extra property
    shot["reroll"]["anyOf"][0]["additionalProperties"] = False
    # ... and a character or place as its description alone
    for group in ("characters", "places"):
        for pattern in schema["properties"][group]["patternProperties"].values():
            pattern["anyOf"] = [{"$ref": pattern.pop("$ref")}, {"type": "string", "minLength": 1}]
    return schema


class Marks:
    """Source positions of every key and value in a YAML document, by path."""

    def __init__(self) -> None:
        self.values: dict[tuple, yaml.Mark] = {}
        self.keys: dict[tuple, yaml.Mark] = {}

    def walk(self, node: yaml.Node | None, path: tuple) -> list[Problem]:
        """Record positions below `node`; return duplicate keys, which PyYAML would silently drop."""
        if node is None:
            return []
        self.values[path] = node.start_mark
        problems = []
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    dup = path + (key, "#dup")
                    self.keys[dup] = key_node.start_mark
                    problems.append(Problem(f"duplicate key `{key}`: the later value would silently win", dup))
                    continue
                seen.add(key)
                self.keys[path + (key,)] = key_node.start_mark
                problems += self.walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                problems += self.walk(item, path + (i,))
        return problems

    def locate(self, problem: Problem, file: str | None) -> Problem:
        """Attach file:line:col: the key for unknown and duplicate keys, else the deepest known value."""
        path = problem.path
        mark = self.keys.get(path) if problem.message.startswith(("unknown key", "duplicate key")) else None
        if path[-1:] == ("#key",):  # a problem with a key itself (a `reroll` task name): at the key
            mark = self.keys.get(path[:-1])
        while mark is None and path:
            mark = self.values.get(path)
            path = path[:-1]
        mark = mark or self.values.get(())
        clean = tuple(p for p in problem.path if p not in ("#dup", "#key"))
        if mark is None or file is None:
            return Problem(problem.message, clean, file)
        return Problem(problem.message, clean, file, mark.line + 1, mark.column + 1)


def _structure_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    errors = exc.errors(include_url=False)
    bad_keys = {tuple(e["loc"][:-1]) for e in errors if e["loc"][-1:] == ("[key]",)}
    for error in errors:
        loc = tuple(error["loc"])
        field = str(loc[-1]) if loc else "storyboard"
        kind, msg, value = error["type"], error["msg"], error.get("input")
        if loc in bad_keys:
            continue  # the value of a key that is itself wrong (`{chunk:2:1}` has none): the key is the root cause
        if loc[-1:] == ("[key]",) and _is_reroll(loc[:-1]):
            problems.append(Problem(_reroll_key_message(str(value)), loc[:-1] + ("#key",)))
            continue
        if _is_reroll(loc):
            problems.append(Problem(f"`reroll` take of `{field}` must be a whole number, 0 or more (got {value!r})",
                                    loc))
            continue
        if kind == "extra_forbidden":
            allowed = sorted(_model_at(loc[:-1]).model_fields)
            message = f"unknown key `{field}`{did_you_mean(field, allowed)}; allowed: {', '.join(allowed)}"
        elif kind == "missing":
            message = f"`{field}` is required"
        elif kind == "literal_error":
            choices = re.findall(r"'([^']*)'", error["ctx"]["expected"])
            message = f"`{field}` must be one of {', '.join(choices)} (got {value!r}){did_you_mean(str(value), choices)}"
        elif kind in ("value_error", "assertion_error"):
            message = msg.removeprefix("Value error, ")
            message = message if message.startswith(("a ", "the ")) else f"`{field}` {message}"
        elif kind == "string_pattern_mismatch" and loc[:1] in (("characters",), ("places",)):
            what = "character" if loc[0] == "characters" else "place"
            message = f"{what} name {field!r} must be letters, digits, '_' or '-', starting with a letter"
        elif kind == "string_pattern_mismatch" and len(loc) == 3 and loc[0] == "shots" and field == "id":
            message = (f"shot id {value!r} must be ASCII letters, digits, '_', '.' or '-', starting with a letter or "
                       f"digit (it names tasks, files and cache keys){_ascii_hint(str(value))}")
        else:
            message = f"`{field}` {msg[0].lower()}{msg[1:]} (got {value!r})".replace("Input should", "should")
            message = message.replace("` input should", "` should")
        problems.append(Problem(message, loc))
    return problems


def _ascii_hint(text: str) -> str:
    """`` (try 'cafe')`` for 'café': the id with accents dropped and other characters as '-', when that is an id."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^A-Za-z0-9_.-]+", "-", plain).strip("-._")
    return f" (try {plain!r})" if plain else ""


def _is_reroll(loc: tuple) -> bool:
    """Whether `loc` is an entry of a shot's `reroll`: ``("shots", i, "reroll", key)``."""
    return len(loc) == 4 and loc[0] == "shots" and loc[2] == "reroll"


def _reroll_key_message(key: str) -> str:
    """A `reroll` key that names no task, with the likely slip: no space before the take, or the shot's id."""
    message = f"`reroll` key {key!r} must name a task of the shot as `keyframe:I` or `chunk:I` (I: its index)"
    if re.fullmatch(r"(keyframe|chunk):\d+:\d+", key):
        kind, index, take = key.split(":")
        return f"{message}; YAML needs a space before the take: `{kind}:{index}: {take}`"
    if re.fullmatch(r"(keyframe|chunk):.+:\d+", key):
        kind, *_, index = key.split(":")
        return f"{message}; the shot is the one it is under: `{kind}:{index}`, not the whole task id"
    return f"{message}, e.g. `chunk:2: 1`"


def _model_at(loc: tuple) -> type[BaseModel]:
    """The pydantic model class found at `loc` inside a storyboard (for the list of allowed keys)."""
    cls: type[BaseModel] = StoryboardSpec
    for part in loc:
        if isinstance(part, int) or part not in cls.model_fields:
            continue
        cls = _first_model(cls.model_fields[part].annotation) or cls
    return cls


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _first_model(arg)
        if found:
            return found
    return None
