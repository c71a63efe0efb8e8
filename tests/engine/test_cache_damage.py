"""A cache that survives damage: cut or changed artifacts are found, reported once, made again, and the output is
the same; `longvid cache verify` finds damage; a full disk stops a render at once, and a small one is warned of."""

from __future__ import annotations

import json
import subprocess

import pytest

import longvid
from longvid.cache import ArtifactStore
from tests.conftest import ROOT, run_cli


def entry(manifest: dict, task: str) -> str:
    """The cache key of `task` in a render's manifest."""
    for shot in manifest["shots"]:
        for item in shot["keyframes"] + shot["chunks"] + ([shot["interpolation"]] if shot["interpolation"] else []):
            if item["task"] == task:
                return item["cache_key"]
    return next(s["cache_key"] for s in manifest["segments"] if s["task"] == task)


def artifact(store: ArtifactStore, key: str):
    return store.folder(key) / store.record(key)["artifact"]


def test_damaged_artifacts_are_found_made_again_and_the_output_is_the_same(interpolated_storyboard, tmp_path,
                                                                          private_cache):
    first = longvid.render(interpolated_storyboard, tmp_path / "a.mp4")
    store = ArtifactStore(private_cache)
    # the case: a cached shot's frames cut to 1000 bytes; and one byte changed inside a segment
    shot = artifact(store, entry(first, "interpolate:hunt"))
    with open(shot, "r+b") as f:
        f.truncate(1000)
    segment = artifact(store, entry(first, "encode:night:0"))
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x55
    segment.write_bytes(bytes(data))

    events = []
    second = longvid.render(interpolated_storyboard, tmp_path / "b.mp4", report=events.append)
    damaged = [(e.task, e.message) for e in events if e.type == "damaged"]
    assert [task for task, _ in damaged] == ["interpolate:hunt", "encode:night:0"]
    size = store.record(entry(second, "interpolate:hunt"))["bytes"]
    assert damaged[0][1] == f"the cached output is damaged (1000 bytes, the record says {size}): rendering it again"
    assert damaged[1][1] == "the cached output is damaged (its sha256 differs from the record's): rendering it again"
    # only the damaged ones run again (and the concat): what reads them is still whole in the cache
    assert {e.task for e in events if e.type == "succeeded"} == {"interpolate:hunt", "encode:night:0", "concat"}
    assert second["execution"]["damaged"] == ["interpolate:hunt", "encode:night:0"]
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    # repaired: the next render finds nothing to report
    events = []
    longvid.render(interpolated_storyboard, tmp_path / "c.mp4", report=events.append)
    assert not [e for e in events if e.type == "damaged"]


def test_cache_verify_finds_damage_and_repairs_it(small_storyboard, tmp_path, private_cache):
    manifest = longvid.render(small_storyboard, tmp_path / "a.mp4")
    store = ArtifactStore(private_cache)
    clean = run_cli("cache", "verify")
    assert clean.returncode == 0 and clean.stdout.strip().endswith("9 entries checked, 0 damaged")
    key = entry(manifest, "encode:hunt:0")
    path = artifact(store, key)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    found = run_cli("cache", "verify")
    assert found.returncode == 1
    assert f"damaged: {key} (encode:hunt:0): its sha256 differs from the record's" in found.stdout
    assert found.stdout.strip().endswith("9 entries checked, 1 damaged: run `longvid cache verify --repair`")
    repaired = run_cli("cache", "verify", "--repair")
    assert repaired.returncode == 0 and "1 damaged, removed" in repaired.stdout
    assert not store.folder(key).exists()
    rows = [" ".join(line.split()) for line in run_cli("status", str(small_storyboard)).stdout.splitlines()]
    assert "encode:hunt:0 missing missing_artifact" in rows
    again = longvid.render(small_storyboard, tmp_path / "b.mp4")
    assert json.dumps(again["execution"]["damaged"]) == "[]"
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB file system (tmpfs), where mounting is allowed (root on Linux); skipped elsewhere."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_real_full_disk_stops_the_render_at_once_and_says_what_to_do(tiny_disk, tmp_path):
    output = tmp_path / "out.mp4"
    log = tmp_path / "events.jsonl"
    result = run_cli("render", str(ROOT / "examples" / "lighthouse.yaml"), "-o", str(output), "--cache",
                     str(tiny_disk), "-q", "--log-json", str(log))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"no space left for the cache at {tiny_disk} (" in result.stderr
    assert "free some with `longvid cache clean --older-than 7d`" in result.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(e["type"] == "warning" and "this render needs about" in e["message"] for e in events), \
        "the render warned before it started"
    assert not any(e["type"] == "retried" for e in events)
    assert not output.exists()
    assert not [p for p in tiny_disk.rglob("*") if p.is_file() and p.stat().st_size], "no partial files are left"


def test_a_render_warns_first_when_the_cache_disk_is_too_small(small_storyboard, tmp_path, monkeypatch):
    monkeypatch.setattr(ArtifactStore, "free_bytes", lambda self: 1000)  # what a nearly full disk reports
    events = []
    longvid.render(small_storyboard, tmp_path / "out.mp4", report=events.append)
    warnings = [e for e in events if e.type == "warning"]
    assert len(warnings) == 1 and warnings[0].message.startswith("this render needs about ")
    assert "which has 1000 bytes free" in warnings[0].message
    assert events.index(warnings[0]) < next(i for i, e in enumerate(events) if e.type == "started")
    events = []
    longvid.render(small_storyboard, tmp_path / "again.mp4", report=events.append)  # all cached: nothing to hold
    assert not [e for e in events if e.type == "warning"]
