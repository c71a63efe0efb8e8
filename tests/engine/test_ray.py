"""Ray on a real local cluster (2 CPUs): the same frames as the local executor. Ray starts only here."""

from __future__ import annotations

import pytest

import longvid
from longvid.errors import TaskFailedError
from tests.conftest import faults

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'longvid[ray]'")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_renders_the_same_frames_as_the_local_executor(cluster, interpolated_storyboard, tmp_path):
    local = longvid.render(interpolated_storyboard, tmp_path / "local.mp4", cache_dir=tmp_path / "c1")
    on_ray = longvid.render(interpolated_storyboard, tmp_path / "ray.mp4", cache_dir=tmp_path / "c2", executor="ray",
                            workers=2)
    assert on_ray["execution"]["executor"] == "ray"
    # interpolation needs a device worker: the actors; the concat writes the output: this process
    assert {s["interpolation"]["worker"] for s in on_ray["shots"]} <= {"cpu#0", "cpu#1"}
    assert on_ray["execution"]["ran"] == local["execution"]["ran"] == 13  # a reference, 4 keyframes, 3 shots, 4
    # segments and the concat
    assert (tmp_path / "ray.mp4").read_bytes() == (tmp_path / "local.mp4").read_bytes()


def test_ray_replaces_a_dead_actor_and_reports_failures(cluster, interpolated_storyboard, tmp_path, monkeypatch):
    faults(tmp_path, monkeypatch, {"interpolate:wake": ["exit"], "interpolate:night": ["raise", "raise"]})
    events = []
    with pytest.raises(TaskFailedError) as info:
        longvid.render(interpolated_storyboard, tmp_path / "o.mp4", executor="ray", workers=2, max_attempts=2,
                       report=events.append)
    assert list(info.value.failures) == ["interpolate:night"]
    died = [e for e in events if e.type == "retried" and e.task == "interpolate:wake"]
    assert died and "WorkerDied" in died[0].message
    assert "interpolate:wake" in info.value.execution.ran
