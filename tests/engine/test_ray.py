"""Ray on a real local cluster (2 CPUs): the same frames as the local executor. Ray starts only here."""

from __future__ import annotations

import json

import pytest

import longvid
from longvid.render import TaskFailedError
from tests.conftest import probe

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'longvid[ray]'")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_renders_the_same_frames_as_the_local_executor(cluster, small_storyboard, tmp_path):
    local = longvid.render(small_storyboard, tmp_path / "local.mp4", cache_dir=tmp_path / "c1")
    on_ray = longvid.render(small_storyboard, tmp_path / "ray.mp4", cache_dir=tmp_path / "c2", executor="ray",
                            workers=2)
    assert on_ray["execution"]["executor"] == "ray"
    assert {c["worker"] for s in on_ray["shots"] for c in s["chunks"]} <= {"cpu#0", "cpu#1"}
    assert on_ray["execution"]["ran"] == local["execution"]["ran"] == 8
    assert probe(tmp_path / "ray.mp4")["hashes"] == probe(tmp_path / "local.mp4")["hashes"]


def test_ray_replaces_a_dead_actor_and_reports_failures(cluster, small_storyboard, tmp_path, monkeypatch):
    plan = tmp_path / "faults.json"
    plan.write_text(json.dumps({"chunk:wake:0": ["exit"], "chunk:night:0": ["raise", "raise"]}))
    monkeypatch.setenv("LONGVID_FAULTS", str(plan))
    events = []
    with pytest.raises(TaskFailedError) as info:
        longvid.render(small_storyboard, tmp_path / "o.mp4", executor="ray", workers=2, max_attempts=2,
                       report=events.append)
    assert list(info.value.failures) == ["chunk:night:0"]
    died = [e for e in events if e.type == "retried" and e.task == "chunk:wake:0"]
    assert died and "WorkerDied" in died[0].message
    assert "chunk:wake:0" in info.value.execution.ran
