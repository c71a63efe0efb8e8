"""A cache that survives damage: cut or changed artifacts are found, reported once, made again, and the output is
the same; `longvid cache verify` finds damage."""

from __future__ import annotations

import json

import longvid
from longvid.cache import ArtifactStore
from tests.conftest import run_cli


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
    assert clean.returncode == 0 and clean.stdout.strip().endswith("8 entries checked, 0 damaged")
    key = entry(manifest, "encode:hunt:0")
    path = artifact(store, key)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    found = run_cli("cache", "verify")
    assert found.returncode == 1
    assert f"damaged: {key} (encode:hunt:0): its sha256 differs from the record's" in found.stdout
    assert found.stdout.strip().endswith("8 entries checked, 1 damaged: run `longvid cache verify --repair`")
    repaired = run_cli("cache", "verify", "--repair")
    assert repaired.returncode == 0 and "1 damaged, removed" in repaired.stdout
    assert not store.folder(key).exists()
    rows = [" ".join(line.split()) for line in run_cli("status", str(small_storyboard)).stdout.splitlines()]
    assert "encode:hunt:0 missing missing_artifact" in rows
    again = longvid.render(small_storyboard, tmp_path / "b.mp4")
    assert json.dumps(again["execution"]["damaged"]) == "[]"
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
