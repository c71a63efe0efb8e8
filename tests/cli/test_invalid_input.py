"""Every kind of bad storyboard: exit code 2, one message per problem at file:line:col, nothing written."""

from __future__ import annotations

import pytest

from longvid.cli import main
from tests.conftest import run_cli, write

CASES = {
    "shot id not ascii": (
        """\
        shots:
          - {id: café, prompt: a cat, duration: 2}
        """,
        "2:10", "shot id 'café' must be ASCII letters, digits, '_', '.' or '-', starting with a letter or digit (it "
                "names tasks, files and cache keys) (try 'cafe')",
    ),
    "unknown key": (
        """\
        shots:
          - prompt: a cat
            duration: 2
            camra: push-in
        """,
        "4:5", "unknown key `camra` (did you mean `camera`?)",
    ),
    "wrong type": (
        """\
        fps: fast
        shots:
          - {prompt: a cat, duration: 2}
        """,
        "1:6", "`fps` should be a valid number",
    ),
    "duration not positive": (
        """\
        shots:
          - prompt: a cat
            duration: 0
        """,
        "3:15", "`duration` should be greater than 0 (got 0)",
    ),
    "fps out of range": (
        """\
        fps: 500
        shots:
          - {prompt: a cat, duration: 2}
        """,
        "1:6", "`fps` should be less than or equal to 120 (got 500)",
    ),
    "width not a multiple of 16": (
        """\
        width: 830
        shots:
          - {prompt: a cat, duration: 2}
        """,
        "1:8", "`width` must be a multiple of 16, as video models need (got 830; try 832)",
    ),
    "duplicate shot ids": (
        """\
        shots:
          - {id: a, prompt: a cat, duration: 2}
          - {id: a, prompt: a dog, duration: 2}
        """,
        "3:10", "duplicate shot id 'a' (first used by shots[0])",
    ),
    "unknown character": (
        """\
        characters:
          keeper: an old man
        shots:
          - prompt: "{kepeer} climbs"
            duration: 2
        """,
        "4:13", "unknown character or place `{kepeer}` (did you mean {keeper}?); defined: keeper",
    ),
    "unknown place": (
        """\
        characters:
          keeper: an old man
        places:
          lighthouse: a white tower on a cliff
        shots:
          - prompt: "{keeper} climbs {lighthose}"
            duration: 2
        """,
        "6:13", "unknown character or place `{lighthose}` (did you mean {lighthouse}?); defined: keeper, lighthouse",
    ),
    "a name used twice": (
        """\
        characters:
          pier: a fisherman called Pier
        places:
          pier: a wooden pier
        shots:
          - {prompt: "{pier} at dawn", duration: 2}
        """,
        "4:9", "`pier` is defined twice, as a character and as a place: `{pier}` must mean one",
    ),
    "missing reference image": (
        """\
        characters:
          mira:
            description: a fisherwoman in a red hat
            reference: refs/mira.png
        shots:
          - {prompt: "{mira} waves", duration: 2}
        """,
        "4:16", "image file not found:",
    ),
    "unreadable reference image": (
        """\
        places:
          pier:
            description: a wooden pier
            reference: [story.yaml]
        shots:
          - {prompt: "{pier} at dawn", duration: 2}
        """,
        "4:17", "cannot read",
    ),
    "keyframe outside its shot": (
        """\
        shots:
          - id: climb
            prompt: stairs
            duration: 6
            keyframes:
              - at: 7
        """,
        "6:13", "`at` (7) is outside shot 'climb', which lasts 6 s",
    ),
    "crossfade longer than a neighbour": (
        """\
        shots:
          - prompt: a cat
            duration: 4
            transition: {type: crossfade, duration: 1.5}
          - {id: short, prompt: a dog, duration: 1}
        """,
        "4:45", "crossfade (1.5 s) is longer than shot 'short' (1 s)",
    ),
    "empty shot list": (
        """\
        title: Nothing
        shots: []
        """,
        "2:8", "`shots` list should have at least 1 item after validation",
    ),
    "yaml syntax error": (
        """\
        title: Broken
        shots:
          - prompt: "unclosed
            duration: 2
        """,
        "5:1", "YAML syntax error",
    ),
    "missing required field": (
        """\
        shots:
          - prompt: a cat
        """,
        "2:5", "`duration` is required",
    ),
    "duplicate yaml key": (
        """\
        fps: 24
        fps: 30
        shots:
          - {prompt: a cat, duration: 2}
        """,
        "2:1", "duplicate key `fps`",
    ),
    "crossfade out of the last shot": (
        """\
        shots:
          - prompt: a cat
            duration: 2
            transition: {type: crossfade, duration: 0.5}
        """,
        "4:17", "the last shot has no next shot to crossfade into",
    ),
    "missing keyframe image": (
        """\
        shots:
          - prompt: a cat
            duration: 2
            keyframes:
              - {at: 0, image: nowhere.png}
        """,
        "5:24", "image file not found",
    ),
    "ip-adapter on an image-edit model": (
        """\
        models:
          keyframes:
            model: black-forest-labs/FLUX.1-Kontext-dev
            ip_adapter: {model: h94/IP-Adapter, weight_name: ip-adapter_sdxl.bin}
        shots:
          - {prompt: a cat, duration: 2}
        """,
        "4:17", "black-forest-labs/FLUX.1-Kontext-dev loads as FluxKontextPipeline, which takes the references itself",
    ),
    "reroll key without a space before the take": (
        """\
        shots:
          - prompt: a cat
            duration: 2
            reroll: {chunk:0:1}
        """,
        "4:14", "`reroll` key 'chunk:0:1' must name a task of the shot as `keyframe:I` or `chunk:I` (I: its index); "
                "YAML needs a space before the take: `chunk:0: 1`",
    ),
    "reroll take below 0": (
        """\
        shots:
          - prompt: a cat
            duration: 2
            reroll:
              chunk:0: -1
        """,
        "5:16", "`reroll` take of `chunk:0` must be a whole number, 0 or more (got -1)",
    ),
    "reroll of a chunk the shot does not have": (
        """\
        shots:
          - prompt: a cat
            duration: 2
            reroll: {"keyframe:0": 1, "chunk:9": 1}
        """,
        "4:42", "`reroll`: shot 'shot01' has no task `chunk:9`; the tasks it can take again: keyframe:0, chunk:0, "
                "chunk:1",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_storyboard_exits_2_with_located_message(tmp_path, case, capsys):
    text, where, message = CASES[case]
    board = write(tmp_path / "story.yaml", text)
    output = tmp_path / "out.mp4"
    result = run_cli("render", str(board), "-o", str(output))
    assert result.returncode == 2, result.stderr
    assert f"{board}:{where}: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [board], "nothing half-written beside the output"
    # validate reports the same problem with the same location (run in this process: the same code, no start-up)
    code = main(["validate", str(board)])
    assert code == 2 and f"{board}:{where}: {message}" in capsys.readouterr().err


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    board = write(tmp_path / "story.yaml", """\
        fps: 500
        width: 830
        shots:
          - prompt: a cat
            duration: -1
            camra: push-in
        """)
    result = run_cli("validate", str(board))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [f"{board}:1:6", f"{board}:2:8", f"{board}:5:15", f"{board}:6:5"]


def test_missing_file_and_bad_flags_exit_2(tmp_path):
    missing = run_cli("render", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "o.mp4"))
    assert missing.returncode == 2 and "storyboard file not found" in missing.stderr
    bad_flag = run_cli("render", "examples/lighthouse.yaml", "-o", str(tmp_path / "o.mp4"), "--crf", "99")
    assert bad_flag.returncode == 2 and "--crf" in bad_flag.stderr
    bad_suffix = run_cli("render", "examples/lighthouse.yaml", "-o", str(tmp_path / "o.avi"))
    assert bad_suffix.returncode == 2 and "output must be an .mp4 file" in bad_suffix.stderr
    assert list(tmp_path.iterdir()) == []


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "storyboard file not found" in result.stderr
