"""`longvid qa`: the seam table of a rendered video, and what it says when there is nothing to read."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_qa_prints_every_seam_and_chunk_of_a_render(small_storyboard, tmp_path):
    out = tmp_path / "small.mp4"
    assert run_cli("render", str(small_storyboard), "-o", str(out), "-q").returncode == 0
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    chunks = sum(len(s["chunks"]) for s in manifest["shots"])
    seams = chunks - len(manifest["shots"])
    assert len(manifest["qa"]["seams"]) == seams > 0 and len(manifest["qa"]["chunks"]) == chunks

    table = run_cli("qa", str(out))
    assert table.returncode == 0, table.stderr
    assert f"{seams} seams: mean score" in table.stdout
    report = json.loads(run_cli("qa", str(out), "--json").stdout)
    # measured again from the decoded H.264, the scores stay close to those measured while encoding
    for again, first in zip(report["seams"], manifest["qa"]["seams"], strict=True):
        assert again["frames"] == first["frames"] and abs(again["score"] - first["score"]) < 0.25


def test_qa_without_a_manifest_exits_2(tmp_path):
    video = tmp_path / "other.mp4"
    video.write_bytes(b"not a video")
    result = run_cli("qa", str(video))
    assert result.returncode == 2
    assert "other.manifest.json not found: `longvid qa` reads a video longvid rendered" in result.stderr
