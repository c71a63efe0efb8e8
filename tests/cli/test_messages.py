"""Messages reach the terminal verbatim: brackets in extras and user text are not eaten as markup."""

from __future__ import annotations

import re

from tests.conftest import run_cli, write


def test_brackets_in_messages_survive(tmp_path):
    board = write(tmp_path / "s.yaml", "shots: [{prompt: a cat, duration: 1, '[b]camra': x}]\n")
    result = run_cli("validate", str(board))
    assert result.returncode == 2 and "unknown key `[b]camra`" in result.stderr
    planned = run_cli("plan", "[red] a fox in the snow", "--duration", "4")
    assert planned.returncode == 0 and "prompt: '[red] a fox in the snow'" in planned.stdout


def test_output_for_logs_has_whole_lines_and_each_note_once(small_storyboard, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    for quiet in ([], ["-q"]):
        # stdout and stderr into one file, as a log collector sees them
        merged = subprocess.run([sys.executable, "-m", "longvid", "render", str(small_storyboard), "-o",
                                 str(tmp_path / f"s{len(quiet)}.mp4"), *quiet], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert merged.returncode == 0, merged.stdout
        lines = merged.stdout.splitlines()
        notes = [line for line in lines if line.startswith("note: ")]
        assert len(notes) == 3 and len(set(notes)) == 3, notes  # one per trimmed shot, each once
        wrote = [line for line in lines if "wrote " in line]
        assert len(wrote) == 1 and wrote[0].startswith("wrote "), "the summary starts its own line"
        progress = [line for line in lines if line.startswith(("keyframes:", "encoding:", "joining:"))]
        assert bool(progress) != bool(quiet)
        assert all(re.fullmatch(r"(keyframes|joining): \d+/\d+|encoding: \d+/84 frames", line) for line in progress)
        assert "encoding: 84/84 frames" in progress if progress else True
