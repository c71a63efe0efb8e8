"""Every code block of the README runs as written: its storyboards validate (and render) beside the example media,
its Python renders, and every `longvid` command in its shell blocks parses with the CLI's own options (the ones that
need nothing from outside run for real)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, probe, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = [(m[1], m[2], README[:m.start()].count("\n") + 1) for m in re.finditer(r"```(\w*)\n(.*?)```", README, re.S)]
# a storyboard fragment (a `models:` section) is checked inside this storyboard
MINIMAL = {"fps": 24, "width": 832, "height": 480, "shots": [{"id": "a", "prompt": "a lighthouse", "duration": 4}]}


def blocks(language: str) -> list[tuple[str, int]]:
    return [(text, line) for lang, text, line in BLOCKS if lang == language]


@pytest.fixture
def examples(tmp_path) -> Path:
    """A folder laid out as examples/ is: its storyboards, pictures and sounds (the README's examples run there)."""
    folder = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("models", "*.py"))
    return folder


def test_the_readme_has_the_blocks_it_should():
    assert len(blocks("yaml")) >= 4 and len(blocks("python")) == 1 and len(blocks("bash")) >= 5


@pytest.mark.parametrize("text,line", blocks("yaml"), ids=[f"line{line}" for _, line in blocks("yaml")])
def test_yaml_blocks_validate(text, line, examples):
    board = examples / f"readme-{line}.yaml"
    data = yaml.safe_load(text)
    board.write_text(text if "shots" in data else yaml.safe_dump(MINIMAL | data), encoding="utf-8")
    result = run_cli("validate", str(board))
    assert result.returncode == 0, f"README.md:{line}: {result.stderr}"


@pytest.mark.slow  # a 15 s render at 832x480, with sound
def test_the_storyboard_format_block_renders(examples, tmp_path):
    text, line = next((t, n) for t, n in blocks("yaml") if t.startswith("title:"))
    board = examples / "story.yaml"
    board.write_text(text, encoding="utf-8")
    out = tmp_path / "story.mp4"
    result = run_cli("render", str(board), "-o", str(out))
    assert result.returncode == 0, f"README.md:{line}: {result.stderr}"
    assert probe(out)["frames"] == 15 * 24


@pytest.mark.slow  # a 15 s render at 832x480
def test_the_python_block_renders(examples):
    (text, line), = blocks("python")
    result = subprocess.run([sys.executable, "-c", text], cwd=examples, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"README.md:{line}: {result.stderr}"
    assert probe(examples / "lighthouse.mp4")["frames"] == 15 * 24


def commands() -> list[tuple[list[str], int]]:
    """Every `longvid ...` command of the shell blocks, split as the shell would (continuations joined, comments
    and `&&` chains cut)."""
    found = []
    for text, line in blocks("bash"):
        for k, command in enumerate(text.replace("\\\n", " ").splitlines()):
            for part in command.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["longvid"]:
                    found.append((words[1:], line + 1 + k))
    return found


@pytest.mark.parametrize("args,line", commands(), ids=[f"line{n}" for _, n in commands()])
def test_shell_commands_parse(args, line):
    from typer.main import get_command

    from longvid.cli import app

    group = get_command(app)  # typer's own click: its classes are told by what they do
    context = group.make_context("longvid", list(args), resilient_parsing=True)
    name, command, words = "longvid", group, list(args)
    while hasattr(command, "resolve_command"):  # `cache clean`, `models list`: down to the command
        name, command, words = command.resolve_command(context, words)
        assert command is not None, f"README.md:{line}: no command {name!r}"
    try:
        command.make_context(name, words)
    except Exception as exc:  # a usage error: an unknown option, a bad value
        if not hasattr(exc, "format_message"):
            raise
        pytest.fail(f"README.md:{line}: longvid {' '.join(args)}: {exc.format_message()}")


@pytest.mark.slow  # a 15 s render at 832x480
def test_the_first_render_runs_as_written(tmp_path):
    (args, line), = [(a, n) for a, n in commands() if a[:2] == ["render", "examples/lighthouse.yaml"]]
    # as written, in a copy of the repository's examples, so the output lands in the test's folder
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("models"))
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, f"README.md:{line}: {result.stderr}"
    assert probe(tmp_path / "lighthouse.mp4")["frames"] == 15 * 24
