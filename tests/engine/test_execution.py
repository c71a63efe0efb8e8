"""Parallel, resumable execution on real renders: cache reuse, edits, kill -9, injected faults, worker counts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import longvid
from longvid.cache import ArtifactStore
from longvid.render import TaskFailedError, status
from tests.conftest import ROOT, probe, write


def many_shots(shots: int = 10, changed: int | None = None, seconds: float = 1.5) -> str:
    lines = ["title: Many shots", "fps: 12", "width: 160", "height: 96", "seed: 3",
             "models: {video: {chunk_frames: 9}}", "continuity: {overlap: 2}", "shots:"]
    for i in range(shots):
        prompt = f"place number {i}" + (" at night" if i == changed else "")
        lines += [f"  - id: s{i:02d}", f"    prompt: {prompt}", f"    duration: {seconds}",
                  f"    camera: {['push-in', 'pan-left', 'static'][i % 3]}"]
    return "\n".join(lines) + "\n"


def test_a_second_render_comes_from_the_cache(small_storyboard, tmp_path):
    first = longvid.render(small_storyboard, tmp_path / "a.mp4")
    second = longvid.render(small_storyboard, tmp_path / "b.mp4")
    assert first["execution"]["ran"] == 8 and first["execution"]["cached"] == 0  # 4 keyframes, 4 chunks
    assert second["execution"]["ran"] == 0 and second["execution"]["cached"] == 8
    assert all(c["cached"] for s in second["shots"] for c in s["chunks"])
    assert probe(tmp_path / "a.mp4")["hashes"] == probe(tmp_path / "b.mp4")["hashes"]


def test_editing_one_shot_reruns_only_that_shot_and_status_says_so_first(tmp_path, private_cache):
    board = write(tmp_path / "story.yaml", many_shots())
    longvid.render(board, tmp_path / "before.mp4")
    write(board, many_shots(changed=5))

    rows = {row.task: row for row in status(board)}
    stale = {task for task, row in rows.items() if row.state != "fresh"}
    shot5 = {t for t in rows if t.startswith(("keyframe:s05:", "chunk:s05:"))}
    assert stale == shot5 | {"stitch"}
    assert rows["keyframe:s05:0"].reasons == (
        "param_changed: prompt 'place number 5' -> 'place number 5 at night'",)
    assert rows["chunk:s05:0"].reasons[-1] == "input_changed: keyframe:s05:0"
    assert rows["chunk:s05:0"].reasons[0].startswith("param_changed: prompt")
    assert rows["stitch"].state == "stale" and rows["stitch"].reasons[0].startswith("input_changed: chunk:s05:0")

    manifest = longvid.render(board, tmp_path / "after.mp4")
    ran = {c["task"] for s in manifest["shots"] for c in s["chunks"] + s["keyframes"] if not c["cached"]}
    assert ran == shot5
    assert all(row.state == "fresh" for row in status(board))
    # the result equals a render of the edited storyboard from an empty cache
    fresh = longvid.render(board, tmp_path / "fresh.mp4", cache_dir=tmp_path / "empty-cache")
    assert fresh["execution"]["cached"] == 0
    assert probe(tmp_path / "after.mp4")["hashes"] == probe(tmp_path / "fresh.mp4")["hashes"]


def test_worker_count_does_not_change_a_single_frame(small_storyboard, tmp_path):
    one = longvid.render(small_storyboard, tmp_path / "one.mp4", cache_dir=tmp_path / "c1")
    two = longvid.render(small_storyboard, tmp_path / "two.mp4", cache_dir=tmp_path / "c2", workers=2)
    assert {c["worker"] for s in two["shots"] for c in s["chunks"]} == {"cpu#0", "cpu#1"}
    assert {c["worker"] for s in one["shots"] for c in s["chunks"]} == {"local"}
    assert probe(tmp_path / "one.mp4")["hashes"] == probe(tmp_path / "two.mp4")["hashes"]
    assert [c["cache_key"] for s in one["shots"] for c in s["chunks"]] == \
        [c["cache_key"] for s in two["shots"] for c in s["chunks"]]


def read_events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # the line the kill cut short
            events.append(json.loads(line))
    return events


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume(tmp_path, private_cache):
    board = write(tmp_path / "story.yaml", many_shots(shots=12, seconds=2))
    output = tmp_path / "out.mp4"
    finished: set[str] = set()
    history = []
    for run, kill_after in enumerate((8, 15, 15)):  # tasks that succeed in each run before its kill: 38 of 60
        log = tmp_path / f"run{run}.jsonl"
        proc = subprocess.Popen([sys.executable, "-m", "longvid", "render", str(board), "-o", str(output), "-q",
                                 "--workers", "2", "--log-json", str(log)], cwd=ROOT, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [e for e in read_events(log) if e["type"] == "succeeded"] if log.exists() else []
            if len(done) >= kill_after or proc.poll() is not None:
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"the render finished before {kill_after} tasks succeeded: nothing to kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        events = read_events(log)
        started = {e["task"] for e in events if e["type"] == "started"}
        succeeded = {e["task"] for e in events if e["type"] == "succeeded"}
        cached = {e["task"] for e in events if e["type"] == "cached"}
        assert not started & finished, f"run killed after {kill_after} redid finished work: {started & finished}"
        assert cached >= finished
        history.append((kill_after, len(succeeded), len(started - succeeded)))
        finished |= succeeded
        assert not output.exists()
    time.sleep(0.5)  # orphaned workers notice their parent is gone and exit
    log = tmp_path / "final.jsonl"
    final = subprocess.run([sys.executable, "-m", "longvid", "render", str(board), "-o", str(output), "-q",
                            "--workers", "2", "--log-json", str(log)], cwd=ROOT, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    events = read_events(log)
    redone = {e["task"] for e in events if e["type"] == "started"} & finished
    assert not redone
    in_flight_total = sum(in_flight for _, _, in_flight in history)
    assert len({e["task"] for e in events if e["type"] == "started"}) <= 60 - len(finished)
    assert all(in_flight <= 2 for _, _, in_flight in history), history  # at most one task per worker
    reference = tmp_path / "reference.mp4"
    longvid.render(board, reference, cache_dir=tmp_path / "reference-cache")
    assert probe(output)["hashes"] == probe(reference)["hashes"]
    assert in_flight_total <= 6


def test_injected_faults_in_worker_processes(small_storyboard, tmp_path, monkeypatch, private_cache):
    plan = tmp_path / "faults.json"
    plan.write_text(json.dumps({
        "chunk:hunt:0": ["raise"],  # fails once, then succeeds
        "chunk:hunt:1": ["oom"],  # out of memory, then succeeds with low-memory settings
        "chunk:wake:0": ["exit"],  # kills its worker process
        "chunk:night:0": ["raise", "raise", "raise"],  # never succeeds
    }))
    monkeypatch.setenv("LONGVID_FAULTS", str(plan))
    events = []
    with pytest.raises(TaskFailedError) as info:
        longvid.render(small_storyboard, tmp_path / "out.mp4", workers=2, max_attempts=3, report=events.append)
    assert list(info.value.failures) == ["chunk:night:0"]
    assert [r["exception"] for r in info.value.failures["chunk:night:0"]] == ["InjectedFault"] * 3
    retried = {e.task: e.message for e in events if e.type == "retried"}
    assert set(retried) == {"chunk:hunt:0", "chunk:hunt:1", "chunk:wake:0", "chunk:night:0"}
    assert "WorkerDied" in retried["chunk:wake:0"] and "MemoryError" in retried["chunk:hunt:1"]
    started = [e for e in events if e.type == "started" and e.task == "chunk:hunt:1"]
    assert [e.message for e in started] == ["attempt 1", "attempt 2 (low memory)"]
    assert not (tmp_path / "out.mp4").exists()

    plans = longvid.compile_storyboard(longvid.load_storyboard(small_storyboard))
    store = ArtifactStore(private_cache)
    from longvid.render import _prepare

    _, _, keys, _ = _prepare(plans.spec)
    assert store.record(keys["chunk:hunt:1"])["low_memory"] is True
    assert store.record(keys["chunk:hunt:0"])["attempt"] == 2
    assert store.record(keys["chunk:wake:0"])["attempt"] == 2

    # without faults, the next render runs only the task that failed, and matches a clean render
    monkeypatch.delenv("LONGVID_FAULTS")
    manifest = longvid.render(small_storyboard, tmp_path / "out.mp4", workers=2)
    assert manifest["execution"]["ran"] == 1
    longvid.render(small_storyboard, tmp_path / "clean.mp4", cache_dir=tmp_path / "clean-cache")
    assert probe(tmp_path / "out.mp4")["hashes"] == probe(tmp_path / "clean.mp4")["hashes"]


def test_out_of_memory_twice_is_reported_with_a_hint(small_storyboard, tmp_path, monkeypatch):
    plan = tmp_path / "faults.json"
    plan.write_text(json.dumps({"chunk:night:0": ["oom", "oom"]}))
    monkeypatch.setenv("LONGVID_FAULTS", str(plan))
    with pytest.raises(TaskFailedError) as info:
        longvid.render(small_storyboard, tmp_path / "out.mp4", max_attempts=5)
    records = info.value.failures["chunk:night:0"]
    assert len(records) == 2, "one retry with low-memory settings, then it gives up"
    assert "still out of memory with the stage's low-memory settings" in records[-1]["hint"]


def test_cli_reports_failed_tasks_with_exit_code_1(small_storyboard, tmp_path, monkeypatch):
    plan = tmp_path / "faults.json"
    plan.write_text(json.dumps({"keyframe:hunt:1": ["raise", "raise"]}))
    env = os.environ | {"LONGVID_FAULTS": str(plan)}
    result = subprocess.run([sys.executable, "-m", "longvid", "render", str(small_storyboard), "-o",
                             str(tmp_path / "o.mp4"), "--retries", "1", "-q"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "1 task(s) failed; 2 task(s) depending on them did not run" in result.stderr
    assert "keyframe:hunt:1: InjectedFault: injected failure of keyframe:hunt:1 (attempt 2)" in result.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_status_and_cache_commands(small_storyboard, tmp_path):
    from tests.conftest import run_cli

    before = run_cli("status", str(small_storyboard))
    assert before.returncode == 0
    assert before.stdout.strip().endswith("0 fresh, 0 stale, 9 missing: a render would run 9 of 9 tasks")
    assert run_cli("render", str(small_storyboard), "-o", str(tmp_path / "s.mp4"), "-q").returncode == 0
    after = run_cli("status", str(small_storyboard))
    assert after.stdout.strip().endswith("9 fresh, 0 stale, 0 missing: a render would run 0 of 9 tasks")
    info = run_cli("cache", "info")
    assert ": 8 entries," in info.stdout
    nothing = run_cli("cache", "clean")
    assert nothing.returncode == 2 and "say what to remove" in nothing.stderr
    bad = run_cli("cache", "clean", "--older-than", "soon")
    assert bad.returncode == 2 and "`older-than` ('soon') must be a number with a unit" in bad.stderr
    cleaned = run_cli("cache", "clean", "--all")
    assert cleaned.returncode == 0 and cleaned.stdout.startswith("removed 8 entries")
    emptied = run_cli("status", str(small_storyboard)).stdout
    assert "chunk:hunt:0      missing  missing_artifact" in emptied
    assert "stitch            stale    inputs_rerun: 8 tasks" in emptied


def test_bad_devices_and_workers_exit_2(small_storyboard, tmp_path):
    from tests.conftest import run_cli

    bad = run_cli("render", str(small_storyboard), "-o", str(tmp_path / "o.mp4"), "--devices", "gpu0")
    assert bad.returncode == 2 and "`devices` (gpu0) must be cpu, cuda or cuda:N" in bad.stderr
    zero = run_cli("render", str(small_storyboard), "-o", str(tmp_path / "o.mp4"), "--workers", "0")
    assert zero.returncode == 2
    assert list(tmp_path.iterdir()) == [small_storyboard]



def test_ctrl_c_stops_cleanly_and_the_next_render_resumes(tmp_path, private_cache):
    board = write(tmp_path / "story.yaml", many_shots(shots=8, seconds=2))
    output, log = tmp_path / "out.mp4", tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "longvid", "render", str(board), "-o", str(output), "-q",
                             "--workers", "2", "--log-json", str(log)], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, like a job in a terminal
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and sum(e["type"] == "succeeded" for e in read_events(log)) >= 6:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the render finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not output.exists()
    done = {e["task"] for e in read_events(log) if e["type"] == "succeeded"}
    manifest = longvid.render(board, output)
    assert manifest["execution"]["cached"] >= len(done) >= 6


def test_moving_a_project_keeps_its_cache(tmp_path, private_cache):
    from PIL import Image

    project = tmp_path / "project"
    project.mkdir()
    Image.new("RGB", (64, 64), (20, 120, 220)).save(project / "key.png")
    write(project / "story.yaml", """\
        fps: 12
        width: 160
        height: 96
        shots:
          - {id: a, prompt: mine, duration: 1, keyframes: [{at: 0, image: key.png}]}
        """)
    first = longvid.render(project / "story.yaml", tmp_path / "a.mp4")
    moved = project.rename(tmp_path / "moved")
    second = longvid.render(moved / "story.yaml", tmp_path / "b.mp4")
    assert second["execution"]["ran"] == 0 and second["execution"]["cached"] == first["execution"]["ran"] == 2
    (moved / "key.png").unlink()
    Image.new("RGB", (64, 64), (220, 20, 20)).save(moved / "key.png")  # same path, other content
    third = longvid.render(moved / "story.yaml", tmp_path / "c.mp4")
    assert third["execution"]["ran"] == 2


def test_worker_processes_can_be_used_from_a_thread(small_storyboard, tmp_path):
    import threading

    result = {}
    thread = threading.Thread(target=lambda: result.update(
        manifest=longvid.render(small_storyboard, tmp_path / "t.mp4", workers=2)))
    thread.start()
    thread.join(timeout=120)
    assert result["manifest"]["execution"]["ran"] == 8
