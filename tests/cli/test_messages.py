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
        # the shots whose last chunk is trimmed, in one note, once
        assert len(notes) == 1 and notes[0].startswith("note: the last chunk of 3 shots generates more frames "
                                                       "than it keeps"), notes
        wrote = [line for line in lines if "wrote " in line]
        assert len(wrote) == 1 and wrote[0].startswith("wrote "), "the summary starts its own line"
        progress = [line for line in lines if line.startswith(("keyframes:", "encoding:", "joining:"))]
        assert bool(progress) != bool(quiet)
        assert all(re.fullmatch(r"(keyframes|joining): \d+/\d+|encoding: \d+/84 frames", line) for line in progress)
        assert "encoding: 84/84 frames" in progress if progress else True


def test_plain_progress_of_a_re_render_ends_with_what_was_done(small_storyboard, tmp_path):
    # the first render fills the cache; after one shot's edit, most segments come from it
    out = str(tmp_path / "s.mp4")
    assert run_cli("render", str(small_storyboard), "-o", out).returncode == 0
    small_storyboard.write_text(small_storyboard.read_text().replace("the forest at night", "the forest at dawn"))
    result = run_cli("render", str(small_storyboard), "-o", out)
    assert result.returncode == 0, result.stderr
    encoding = [line for line in result.stderr.splitlines() if line.startswith("encoding: ")]
    counts = [tuple(map(int, re.match(r"encoding: (\d+)/(\d+) frames", line).groups())) for line in encoding]
    assert {total for _, total in counts} == {84} and [done for done, _ in counts] == sorted(d for d, _ in counts)
    last = re.fullmatch(r"encoding: 84/84 frames \((\d+) from the cache\)", encoding[-1])
    assert last, encoding  # the last line says what was done in all, and the cache's part
    assert 0 < int(last[1]) < 84  # the night shot's 18 frames (and the fade into it) were encoded again
    assert int(last[1]) <= 84 - 18


def test_validate_counts_in_the_singular_where_there_is_one(tmp_path):
    story = tmp_path / "one.yaml"
    story.write_text("characters:\n  fox: a red fox\nshots:\n  - {prompt: '{fox} runs', duration: 1}\n")
    out = run_cli("validate", str(story))
    assert out.returncode == 0, out.stderr
    summary = [line for line in out.stdout.splitlines() if line.startswith("ok: ")][0]
    assert "1 shot," in summary and "(1 reference, 1 keyframe," in summary and "1 references" not in summary
