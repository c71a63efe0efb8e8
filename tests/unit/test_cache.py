"""The content-addressed store: keys, bit-exact round trips, atomic publish, status reasons, cleaning."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from longvid.cache import ArtifactStore, explain_change, is_disk_full, task_key
from longvid.errors import DamagedArtifactError

BASE = {"stage": "preview.chunk", "code_version": "1", "params": {"prompt": "a fox", "frames": 9}, "seed": 1,
        "model": None, "input_keys": ["k1"]}


def key(**change):
    args = BASE | change
    return task_key(args["stage"], args["code_version"], args["params"], args["seed"], args["model"], args["input_keys"])


def test_key_changes_with_every_ingredient_and_only_then():
    assert key() == key(params={"frames": 9, "prompt": "a fox"})  # canonical: order does not matter
    variants = [key(stage="wan.chunk"), key(code_version="2"), key(params={"prompt": "a dog", "frames": 9}),
                key(seed=2), key(model="Wan-AI/Wan2.1"), key(input_keys=["k2"])]
    assert len({key(), *variants}) == 7


def test_frames_round_trip_bit_exact(tmp_path):
    store = ArtifactStore(tmp_path)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 48, 64, 3), dtype=np.uint8)  # noise: the hardest case for a codec
    record = store.put("ab" * 32, frames, {"task": "chunk:a:0"})
    assert store.has("ab" * 32)
    assert record["frames"] == 7 and record["shape"] == [7, 48, 64, 3] and record["artifact"] == "artifact.mkv"
    assert np.array_equal(store.load("ab" * 32), frames)
    assert np.array_equal(np.stack(list(store.frames("ab" * 32))), frames)


def test_streamed_frames_and_images(tmp_path):
    store = ArtifactStore(tmp_path)
    frames = [np.full((32, 32, 3), i * 20, np.uint8) for i in range(5)]
    store.put("cd" * 32, iter(frames), {})
    assert np.array_equal(store.load("cd" * 32), np.stack(frames))
    image = np.arange(32 * 48 * 3, dtype=np.uint32).reshape(32, 48, 3).astype(np.uint8)
    store.put("ef" * 32, image, {})
    assert np.array_equal(store.load("ef" * 32), image)


def test_a_task_is_done_only_when_artifact_and_record_exist(tmp_path):
    store = ArtifactStore(tmp_path)
    store.put("ab" * 32, np.zeros((2, 16, 16, 3), np.uint8), {})
    (store.folder("ab" * 32) / "record.json").unlink()
    assert not store.has("ab" * 32), "an artifact without its record is not done"
    store.put("cd" * 32, np.zeros((2, 16, 16, 3), np.uint8), {})
    (store.folder("cd" * 32) / "artifact.mkv").unlink()
    assert not store.has("cd" * 32)
    assert store.status("p", "chunk:a:0", "cd" * 32, {}).reasons == ("missing_artifact",)


def test_a_failed_write_leaves_no_entry(tmp_path):
    store = ArtifactStore(tmp_path)

    def broken():
        yield np.zeros((16, 16, 3), np.uint8)
        raise RuntimeError("the model crashed mid-chunk")

    with pytest.raises(RuntimeError):
        store.put("ab" * 32, broken(), {})
    assert not store.has("ab" * 32)
    assert list(store.folder("ab" * 32).iterdir()) == []


def test_status_explains_what_changed(tmp_path):
    store = ArtifactStore(tmp_path)
    before = {"stage": "preview.chunk", "code_version": "1", "params": {"prompt": "a fox", "frames": 9}, "seed": 1,
              "model": None, "inputs": {"keyframe:a:0": "k1"}, "key": "old"}
    store.remember("proj", "chunk:a:0", before)
    after = before | {"params": {"prompt": "a dog", "frames": 9}, "inputs": {"keyframe:a:0": "k2"}}
    status = store.status("proj", "chunk:a:0", "new", after)
    assert status.state == "stale"
    assert status.reasons == ("param_changed: prompt 'a fox' -> 'a dog'", "input_changed: keyframe:a:0")
    assert explain_change(before, before | {"code_version": "2", "seed": 3}) == [
        "code_changed: preview.chunk v1 -> preview.chunk v2", "seed_changed"]
    assert store.status("proj", "chunk:b:0", "x", after).reasons == ("never_rendered",)


def test_clean_by_age_then_least_recently_used(tmp_path):
    store = ArtifactStore(tmp_path)
    now = time.time()
    for i, age_days in enumerate([10, 5, 1, 0]):
        k = f"{i:02d}" * 32
        store.put(k, np.zeros((3, 64, 64, 3), np.uint8), {})
        record = store.folder(k) / "record.json"
        os.utime(record, (now - age_days * 86400, now - age_days * 86400))
    sizes = {folder.name[:2]: size for folder, _, size in store.entries()}
    size = max(sizes.values())
    assert store.clean(older_than=7 * 86400, now=now) == (1, sizes["00"])
    assert not store.has("00" * 32) and store.has("01" * 32)
    removed, _ = store.clean(max_bytes=2 * size, now=now)
    assert removed == 1 and not store.has("01" * 32) and store.has("02" * 32) and store.has("03" * 32)
    store.touch("02" * 32)  # used just now: "03" becomes the least recently used
    os.utime(store.folder("03" * 32) / "record.json", (now - 100, now - 100))
    store.clean(max_bytes=size, now=now)
    assert store.has("02" * 32) and not store.has("03" * 32)


def test_locations_are_not_content():
    here = key(params={"image": {"_path": "/home/a/key.png", "sha256": "abc"}})
    there = key(params={"image": {"_path": "/mnt/b/key.png", "sha256": "abc"}})
    other = key(params={"image": {"_path": "/home/a/key.png", "sha256": "def"}})
    assert here == there != other


def test_reads_check_the_artifact_against_its_record(tmp_path):
    store = ArtifactStore(tmp_path)
    frames = np.random.default_rng(1).integers(0, 256, (4, 32, 48, 3), dtype=np.uint8)
    record = store.put("ab" * 32, frames, {})
    assert record["bytes"] == (store.folder("ab" * 32) / "artifact.mkv").stat().st_size and len(record["sha256"]) == 64
    artifact = store.folder("ab" * 32) / "artifact.mkv"
    with open(artifact, "r+b") as f:  # cut short
        f.truncate(1000)
    assert not store.has("ab" * 32) and store.damage("ab" * 32).startswith("1000 bytes, the record says")
    with pytest.raises(DamagedArtifactError, match=r"^cached artifact abababababab is damaged \(1000 bytes"):
        store.load("ab" * 32)
    assert store.status("p", "chunk:a:0", "ab" * 32, {}).reasons[0].startswith("damaged_artifact: 1000 bytes")

    store.put("cd" * 32, frames, {})
    artifact = store.folder("cd" * 32) / "artifact.mkv"
    data = bytearray(artifact.read_bytes())
    time.sleep(0.02)  # damage comes later than the write (file times are coarser than this test)
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed: only the hash sees it
    artifact.write_bytes(bytes(data))
    fresh = ArtifactStore(tmp_path)
    assert fresh.has("cd" * 32) and fresh.damage("cd" * 32) == "its sha256 differs from the record's"
    with pytest.raises(DamagedArtifactError):
        fresh.load("cd" * 32)
    assert [(key, why) for key, why, _ in fresh.verify()] == [
        ("ab" * 32, store.damage("ab" * 32)), ("cd" * 32, "its sha256 differs from the record's")]
    assert [key for key, _, _ in fresh.verify(repair=True)] == ["ab" * 32, "cd" * 32]
    assert list(fresh.verify()) == [] and fresh.entries() == []


def test_frames_read_from_any_frame_on(tmp_path):
    store = ArtifactStore(tmp_path)
    frames = np.stack([np.full((16, 16, 3), 7 * i, np.uint8) for i in range(30)])
    store.put("ef" * 32, frames, {})
    for start, stop in [(0, 30), (1, 5), (13, 30), (29, 30), (24, 27)]:
        got = np.stack(list(store.frames("ef" * 32, start, stop)))
        assert np.array_equal(got, frames[start:stop]), (start, stop)


def test_a_full_disk_is_recognised_through_the_chain_of_causes():
    import errno

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("ffmpeg failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(RuntimeError("something else"))


def test_a_field_added_later_leaves_the_keys_of_tasks_that_do_not_use_it_unchanged():
    from longvid.tasks import ChunkParams, Pipeline

    plain = Pipeline(_path="m", steps=4, guidance=1.0)
    assert "decode_chunk_size" not in plain.content()  # left at its default: as the record was before the field
    assert Pipeline(_path="m", steps=4, guidance=1.0, decode_chunk_size=8).content()["decode_chunk_size"] == 8
    # nested, at any depth: a chunk's key holds its pipeline's content the same way
    fields = {"width": 64, "height": 64, "prompt": "p", "fps": 8.0, "start": 0, "frames": 9, "used": 9, "overlap": 0,
              "pipeline": plain}
    assert "decode_chunk_size" not in ChunkParams(**fields).content()["pipeline"]
