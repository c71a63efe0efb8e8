"""Messages reach the terminal verbatim: brackets in extras and user text are not eaten as markup."""

from __future__ import annotations

from tests.conftest import run_cli, write


def test_brackets_in_messages_survive(tmp_path):
    board = write(tmp_path / "s.yaml", "shots: [{prompt: a cat, duration: 1, '[b]camra': x}]\n")
    result = run_cli("validate", str(board))
    assert result.returncode == 2 and "unknown key `[b]camra`" in result.stderr
    planned = run_cli("plan", "[red] a fox in the snow", "--duration", "4")
    assert planned.returncode == 0 and "prompt: '[red] a fox in the snow'" in planned.stdout
