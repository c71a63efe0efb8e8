"""Every example runs, through the same commands the README shows."""

from __future__ import annotations

import subprocess
import sys

import pytest

import longvid
from tests.conftest import ROOT, probe, run_cli

STORYBOARDS = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.slow  # full-size renders (832x480)
@pytest.mark.parametrize("board", STORYBOARDS, ids=[b.stem for b in STORYBOARDS])
def test_example_storyboard_renders_exactly(board, tmp_path):
    output = tmp_path / f"{board.stem}.mp4"
    result = run_cli("render", str(board.relative_to(ROOT)), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert f"wrote {output}" in result.stdout
    spec = longvid.load_storyboard(board)
    info = probe(output)
    assert (info["frames"], info["width"], info["height"]) == (spec.total_frames, spec.width, spec.height)
    assert info["fps"] == spec.fps and (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert output.with_suffix(".manifest.json").exists()
    # +faststart: the index (moov) precedes the media data, so players start before the download ends
    data = output.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    # not a terminal: progress comes as whole lines, each kind ending complete, never run into other output
    progress = {}
    for line in result.stderr.splitlines():
        if line.startswith(("references: ", "keyframes: ", "interpolation: ", "encoding: ", "joining: ")):
            kind, count = line.split(": ")
            progress[kind] = count
    assert progress["encoding"] == f"{spec.total_frames}/{spec.total_frames} frames"
    assert progress["keyframes"].split("/")[0] == progress["keyframes"].split("/")[1] and progress["joining"] == "1/1"
    assert all(line.startswith((*(f"{kind}: " for kind in progress), "note: ")) for line in result.stderr.splitlines())


@pytest.mark.slow  # two full-size renders
def test_python_api_example_matches_the_yaml(tmp_path):
    output = tmp_path / "python.mp4"
    result = subprocess.run([sys.executable, "examples/python_api.py", str(output)], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    yaml_output = tmp_path / "yaml.mp4"
    longvid.render(ROOT / "examples" / "lighthouse.yaml", yaml_output)
    assert probe(output)["hashes"] == probe(yaml_output)["hashes"], "same storyboard, same frames"


def test_plan_then_render(tmp_path):
    board = tmp_path / "fox.yaml"
    planned = run_cli("plan", "A fox wakes in a snowy forest. Later it hunts.", "-o", str(board), "--duration", "4",
                      "--width", "160", "--height", "96", "--fps", "12")
    assert planned.returncode == 0, planned.stderr
    assert run_cli("validate", str(board)).returncode == 0
    output = tmp_path / "fox.mp4"
    assert run_cli("render", str(board), "-o", str(output), "--preset", "ultrafast").returncode == 0
    assert probe(output)["frames"] == 48


def test_schema_graph_and_version(tmp_path):
    schema = run_cli("schema")
    assert schema.returncode == 0 and '"title": "longvid storyboard"' in schema.stdout
    dot = run_cli("graph", "examples/lighthouse.yaml")
    assert dot.returncode == 0 and '"keyframe:climb:1" -> "chunk:climb:5";' in dot.stdout
    shots = run_cli("graph", "examples/lighthouse.yaml", "--level", "shots", "--format", "json")
    assert shots.returncode == 0 and '"kind": "next"' in shots.stdout
    version = run_cli("--version")
    assert version.stdout.strip() == f"longvid {longvid.__version__}"


def test_log_json_writes_one_event_per_line(tmp_path, small_storyboard):
    import json

    log = tmp_path / "events.jsonl"
    result = run_cli("render", str(small_storyboard), "-o", str(tmp_path / "s.mp4"), "--log-json", str(log), "-q")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    encode_events = [e for e in events if e.get("kind") == "encode"]
    queued = {e["task"]: e["frames"] for e in encode_events if e["type"] == "queued"}
    succeeded = {e["task"]: e["frames"] for e in encode_events if e["type"] == "succeeded"}
    assert queued == succeeded and len(queued) == 4 and sum(queued.values()) == 84  # the segments hold every frame
    assert [e["message"] for e in events if e["type"] == "note"][0].startswith("the last chunk of 3 shots generates")
    assert events[-1]["type"] == "finished" and events[-1]["done"] == 84


MODEL_EXAMPLES = sorted((ROOT / "examples" / "models").glob("*.yaml"))


@pytest.mark.parametrize("board", MODEL_EXAMPLES, ids=[b.stem for b in MODEL_EXAMPLES])
def test_model_examples_validate_offline(board):
    # Their weights are not here; the plan (families, frame rules, anchoring) is checked without them.
    result = run_cli("validate", str(board.relative_to(ROOT)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: {board.relative_to(ROOT)}")
