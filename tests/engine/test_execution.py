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
from longvid.errors import TaskFailedError, TaskUserError
from longvid.planners.compile import Output
from longvid.rendering import prepare, status
from tests.conftest import ROOT, decode, faults, run_cli, write


def many_shots(shots: int = 10, changed: int | None = None, seconds: float = 1.5) -> str:
    lines = ["title: Many shots", "fps: 12", "width: 160", "height: 96", "seed: 3",
             "models: {video: {chunk_frames: 9}}", "continuity: {overlap: 2}", "shots:"]
    for i in range(shots):
        prompt = f"place number {i}" + (" at night" if i == changed else "")
        lines += [f"  - id: s{i:02d}", f"    prompt: {prompt}", f"    duration: {seconds}",
                  f"    camera: {['push-in', 'pan-left', 'static'][i % 3]}"]
    return "\n".join(lines) + "\n"


def ran_of_kind(events: list, kind: str) -> set[str]:
    return {e.task for e in events if e.type == "succeeded" and e.kind == kind}


def test_a_cached_render_encodes_nothing_and_writes_the_same_bytes(small_storyboard, tmp_path):
    first = longvid.render(small_storyboard, tmp_path / "a.mp4")
    events = []
    second = longvid.render(small_storyboard, tmp_path / "b.mp4", report=events.append)
    # the fox's reference, 4 keyframes, 4 segments and the concat; the 4 preview chunks are drawn inside the
    # segments, never stored
    assert (first["execution"]["ran"], first["execution"]["cached"], first["execution"]["computed_inline"]) == (10, 0, 4)
    assert (second["execution"]["ran"], second["execution"]["cached"]) == (1, 9)
    assert [e.task for e in events if e.type == "started"] == ["concat"]
    assert all(s["cached"] for s in second["segments"]) and not any(s["cached"] for s in first["segments"])
    assert all(not c["stored"] and c["computed_in"] for s in first["shots"] for c in s["chunks"])
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert second["qa"]["seams"] == first["qa"]["seams"]  # the QA comes from the segments' records


def test_editing_one_shot_reruns_only_that_shot_and_status_says_so_first(tmp_path, private_cache):
    board = write(tmp_path / "story.yaml", many_shots())
    longvid.render(board, tmp_path / "before.mp4")
    write(board, many_shots(changed=5))

    rows = {row.task: row for row in status(board)}
    stale = {task for task, row in rows.items() if row.state != "fresh"}
    shot5 = {t for t in rows if t.startswith(("keyframe:s05:", "chunk:s05:", "encode:s05:"))}
    assert stale == shot5 | {"concat"}
    assert rows["keyframe:s05:0"].reasons == (
        "param_changed: prompt 'place number 5' -> 'place number 5 at night'",)
    assert rows["chunk:s05:0"].reasons[-1] == "input_changed: keyframe:s05:0"
    assert any(r.startswith("param_changed: prompt") for r in rows["chunk:s05:0"].reasons)
    assert rows["concat"].state == "stale" and rows["concat"].reasons[0].startswith("input_changed: encode:s05:0")

    events = []
    manifest = longvid.render(board, tmp_path / "after.mp4", report=events.append)
    assert ran_of_kind(events, "encode") == {t for t in shot5 if t.startswith("encode:")}
    assert ran_of_kind(events, "keyframe") == {t for t in shot5 if t.startswith("keyframe:")}
    assert {c["task"] for s in manifest["shots"] for c in s["chunks"] if c["computed_in"]} == \
        {t for t in shot5 if t.startswith("chunk:")}
    assert all(row.state == "fresh" for row in status(board))
    # the result equals a render of the edited storyboard from an empty cache
    fresh = longvid.render(board, tmp_path / "fresh.mp4", cache_dir=tmp_path / "empty-cache")
    assert fresh["execution"]["cached"] == 0
    assert (tmp_path / "after.mp4").read_bytes() == (tmp_path / "fresh.mp4").read_bytes()


def test_an_edit_reencodes_the_shots_segments_and_the_crossfades_that_touch_it(tmp_path, private_cache):
    def story(middle: str) -> str:
        return f"""\
            fps: 12
            width: 160
            height: 96
            shots:
              - {{id: a, prompt: a harbour at dawn, duration: 4, transition: {{type: crossfade, duration: 1}}}}
              - {{id: b, prompt: {middle}, duration: 8, transition: {{type: crossfade, duration: 1}}}}
              - {{id: c, prompt: a storm at sea, duration: 4}}
              - {{id: d, prompt: the calm after, duration: 3}}
            """

    board = write(tmp_path / "story.yaml", story("a boat leaves"))
    before = longvid.render(board, tmp_path / "before.mp4")
    segments = [s["task"] for s in before["segments"]]
    assert "encode:a>b" in segments and "encode:b>c" in segments
    assert len([s for s in segments if s.startswith("encode:b:")]) == 2  # 8 s less its crossfades: 2 pieces of ~3 s
    write(board, story("a boat leaves at night"))
    events = []
    after = longvid.render(board, tmp_path / "after.mp4", report=events.append)
    touched = {s for s in segments if s.startswith("encode:b:")} | {"encode:a>b", "encode:b>c"}
    assert ran_of_kind(events, "encode") == touched
    assert {s["task"] for s in after["segments"] if s["cached"]} == set(segments) - touched
    fresh = longvid.render(board, tmp_path / "fresh.mp4", cache_dir=tmp_path / "other-cache")
    assert (decode(tmp_path / "after.mp4") == decode(tmp_path / "fresh.mp4")).all()
    assert fresh["execution"]["cached"] == 0


def test_worker_count_does_not_change_a_single_frame(small_storyboard, tmp_path):
    one = longvid.render(small_storyboard, tmp_path / "one.mp4", cache_dir=tmp_path / "c1", cpu_workers=1)
    two = longvid.render(small_storyboard, tmp_path / "two.mp4", cache_dir=tmp_path / "c2", workers=2)
    assert {s["worker"] for s in one["segments"]} == {"local"}
    assert {s["worker"] for s in two["segments"]} <= {"cpu#0", "cpu#1", "lane1"}
    assert (tmp_path / "one.mp4").read_bytes() == (tmp_path / "two.mp4").read_bytes()
    assert [s["cache_key"] for s in one["segments"]] == [s["cache_key"] for s in two["segments"]]


def read_events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # the line the kill cut short
            events.append(json.loads(line))
    return events


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume(tmp_path, private_cache):
    board = write(tmp_path / "story.yaml", many_shots(shots=12, seconds=2))  # 12 keyframes, 12 segments, 1 concat
    output = tmp_path / "out.mp4"
    finished: set[str] = set()
    history = []
    for run, kill_after in enumerate((4, 6, 6)):  # tasks that succeed in each run before its kill: 16 of 25
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
    assert not {e["task"] for e in events if e["type"] == "started"} & finished
    assert len({e["task"] for e in events if e["type"] == "started"}) <= 25 - len(finished)
    assert all(in_flight <= 3 for _, _, in_flight in history), history  # 2 worker processes and 1 lane
    reference = tmp_path / "reference.mp4"
    longvid.render(board, reference, cache_dir=tmp_path / "reference-cache")
    assert output.read_bytes() == reference.read_bytes()


def test_injected_faults_in_worker_processes(interpolated_storyboard, tmp_path, monkeypatch, private_cache):
    board = interpolated_storyboard
    faults(tmp_path, monkeypatch, {
        "interpolate:hunt": ["raise"],  # fails once, then succeeds
        "interpolate:night": ["oom"],  # out of memory, then succeeds with low-memory settings
        "interpolate:wake": ["exit"],  # kills its worker process
        "encode:night:0": ["raise", "raise", "raise"],  # never succeeds
    })
    events = []
    with pytest.raises(TaskFailedError) as info:
        longvid.render(board, tmp_path / "out.mp4", workers=2, max_attempts=3, report=events.append)
    assert list(info.value.failures) == ["encode:night:0"]
    assert [r["exception"] for r in info.value.failures["encode:night:0"]] == ["InjectedFault"] * 3
    retried = {e.task: e.message for e in events if e.type == "retried"}
    assert set(retried) == {"interpolate:hunt", "interpolate:night", "interpolate:wake", "encode:night:0"}
    assert "WorkerDied" in retried["interpolate:wake"] and "MemoryError" in retried["interpolate:night"]
    started = [e for e in events if e.type == "started" and e.task == "interpolate:night"]
    assert [e.message for e in started] == ["attempt 1", "attempt 2 (low memory)"]
    assert not (tmp_path / "out.mp4").exists()

    store = ArtifactStore(private_cache)
    _, keys = prepare(longvid.load_storyboard(board), Output())
    assert store.record(keys["interpolate:night"])["low_memory"] is True
    assert store.record(keys["interpolate:hunt"])["attempt"] == 2
    assert store.record(keys["interpolate:wake"])["attempt"] == 2

    # without faults, the next render runs only the task that failed (and the concat), and matches a clean render
    monkeypatch.delenv("LONGVID_FAULTS")
    events = []
    longvid.render(board, tmp_path / "out.mp4", workers=2, report=events.append)
    assert {e.task for e in events if e.type == "started"} == {"encode:night:0", "concat"}
    longvid.render(board, tmp_path / "clean.mp4", cache_dir=tmp_path / "clean-cache")
    assert (tmp_path / "out.mp4").read_bytes() == (tmp_path / "clean.mp4").read_bytes()


def test_out_of_memory_twice_is_reported_with_a_hint(small_storyboard, tmp_path, monkeypatch):
    faults(tmp_path, monkeypatch, {"encode:night:0": ["oom", "oom"]})
    with pytest.raises(TaskFailedError) as info:
        longvid.render(small_storyboard, tmp_path / "out.mp4", max_attempts=5)
    records = info.value.failures["encode:night:0"]
    assert len(records) == 2, "one retry with low-memory settings, then it gives up"
    assert "still out of memory with the stage's low-memory settings" in records[-1]["hint"]


def test_a_user_error_in_a_worker_process_fails_at_once_and_is_not_retried(interpolated_storyboard, tmp_path,
                                                                          monkeypatch):
    plan = faults(tmp_path, monkeypatch, {"interpolate:hunt": ["user", "user", "user"]})
    events = []
    with pytest.raises(TaskUserError, match=r"^interpolate:hunt: injected user error in interpolate:hunt \(attempt 1\)$"):
        longvid.render(interpolated_storyboard, tmp_path / "out.mp4", workers=2, max_attempts=3, report=events.append)
    assert [e.type for e in events if e.task == "interpolate:hunt"][-2:] == ["started", "failed"]
    assert sum(e.type == "started" and e.task == "interpolate:hunt" for e in events) == 1
    assert not (tmp_path / "out.mp4").exists()
    # from the command line: exit code 2 and the message, no traceback
    (Path(str(plan) + ".attempts")).rename(tmp_path / "spent")  # count the attempts afresh
    result = run_cli("render", str(interpolated_storyboard), "-o", str(tmp_path / "o.mp4"), "--workers", "2", "-q")
    assert result.returncode == 2 and "error: interpolate:hunt: injected user error" in result.stderr
    assert "Traceback" not in result.stderr and "retried" not in result.stderr


def test_a_full_disk_ends_the_render_at_once_with_what_to_do(small_storyboard, tmp_path, monkeypatch, private_cache):
    faults(tmp_path, monkeypatch, {"encode:hunt:0": ["enospc", "enospc", "enospc"]})
    events = []
    with pytest.raises(longvid.RenderError) as info:
        longvid.render(small_storyboard, tmp_path / "out.mp4", max_attempts=3, cpu_workers=1, report=events.append)
    message = str(info.value)
    assert type(info.value).__name__ == "DiskFullError"
    assert message.startswith(f"encode:hunt:0: no space left for the cache at {private_cache} (")
    assert "B free): free some with `longvid cache clean --older-than 7d`" in message and "--cache DIR" in message
    assert sum(e.type == "started" and e.task == "encode:hunt:0" for e in events) == 1, "no retries"
    assert not any(e.type == "retried" for e in events)
    # it stopped at once: nothing started after the failure
    failed_at = next(i for i, e in enumerate(events) if e.type == "failed")
    assert not any(e.type == "started" for e in events[failed_at:])
    assert not (tmp_path / "out.mp4").exists()


def test_cli_reports_failed_tasks_with_exit_code_1(small_storyboard, tmp_path, monkeypatch):
    faults(tmp_path, monkeypatch, {"keyframe:hunt:1": ["raise", "raise"]})
    result = run_cli("render", str(small_storyboard), "-o", str(tmp_path / "o.mp4"), "--retries", "1", "-q")
    assert result.returncode == 1
    # the keyframe opens nothing else: the segments that read the shot's chunks, and the concat, do not run
    assert "1 task(s) failed; 3 task(s) depending on them did not run" in result.stderr
    assert "keyframe:hunt:1: InjectedFault: injected failure of keyframe:hunt:1 (attempt 2)" in result.stderr
    assert not (tmp_path / "o.mp4").exists()


def lines(text: str) -> list[str]:
    """The lines of a table, each with its columns one space apart."""
    return [" ".join(line.split()) for line in text.splitlines()]


def test_status_and_cache_commands(small_storyboard, tmp_path):
    before = run_cli("status", str(small_storyboard))
    assert before.returncode == 0
    assert before.stdout.strip().endswith("0 fresh, 0 stale, 14 missing: a render would run 14 of 14 tasks")
    assert run_cli("render", str(small_storyboard), "-o", str(tmp_path / "s.mp4"), "-q").returncode == 0
    after = run_cli("status", str(small_storyboard))
    assert after.stdout.strip().endswith("14 fresh, 0 stale, 0 missing: a render would run 0 of 14 tasks")
    other = lines(run_cli("status", str(small_storyboard), "--crf", "20").stdout)
    assert "encode:hunt:0 stale param_changed: crf 18 -> 20" in other
    info = run_cli("cache", "info")
    assert ": 9 entries," in info.stdout  # a reference, 4 keyframes and 4 segments
    nothing = run_cli("cache", "clean")
    assert nothing.returncode == 2 and "say what to remove" in nothing.stderr
    bad = run_cli("cache", "clean", "--older-than", "soon")
    assert bad.returncode == 2 and "`older-than` ('soon') must be a number with a unit" in bad.stderr
    cleaned = run_cli("cache", "clean", "--all")
    assert cleaned.returncode == 0 and cleaned.stdout.startswith("removed 9 entries")
    emptied = lines(run_cli("status", str(small_storyboard)).stdout)
    assert "encode:hunt:0 missing missing_artifact" in emptied
    assert "chunk:night:0 stale needed_by: encode:night:0" in emptied
    assert "concat stale inputs_rerun: 13 tasks" in emptied


def test_bad_devices_and_workers_exit_2(small_storyboard, tmp_path):
    bad = run_cli("render", str(small_storyboard), "-o", str(tmp_path / "o.mp4"), "--devices", "gpu0")
    assert bad.returncode == 2 and "`devices` (gpu0) must be cpu, cuda or cuda:N" in bad.stderr
    zero = run_cli("render", str(small_storyboard), "-o", str(tmp_path / "o.mp4"), "--workers", "0")
    assert zero.returncode == 2
    assert list(tmp_path.iterdir()) == [small_storyboard]


@pytest.mark.slow
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
    assert second["execution"]["ran"] == 1 and second["execution"]["cached"] == first["execution"]["ran"] - 1 == 2
    (moved / "key.png").unlink()
    Image.new("RGB", (64, 64), (220, 20, 20)).save(moved / "key.png")  # same path, other content
    third = longvid.render(moved / "story.yaml", tmp_path / "c.mp4")
    assert third["execution"]["ran"] == 3


def test_worker_processes_can_be_used_from_a_thread(small_storyboard, tmp_path):
    import threading

    result = {}
    thread = threading.Thread(target=lambda: result.update(
        manifest=longvid.render(small_storyboard, tmp_path / "t.mp4", workers=2)))
    thread.start()
    thread.join(timeout=120)
    assert result["manifest"]["execution"]["ran"] == 10
