"""The scheduler as a pure function, and through the discrete-event simulation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from longvid.execution.scheduler import Job, Scheduler, critical_path, simulate


def test_ready_set_follows_dependencies_and_skips_cache_hits():
    jobs = [Job("kf"), Job("c0", ("kf",)), Job("c1", ("kf",)), Job("stitch", ("c0", "c1"))]
    s = Scheduler(jobs)
    assert s.ready() == ["kf"]
    cached = Scheduler(jobs, done={"kf", "c0"})
    assert cached.ready() == ["c1"]
    attempt = cached.pick(None)
    assert attempt.task == "c1" and attempt.attempt == 1
    cached.succeeded("c1")
    assert cached.ready() == ["stitch"]


def test_critical_path_goes_first():
    jobs = [Job("a", cost=1), Job("b", ("a",), cost=1), Job("c", ("b",), cost=1), Job("d", cost=2.5)]
    s = Scheduler(jobs)
    assert s.rank == {"a": 3, "b": 2, "c": 1, "d": 2.5}
    assert s.ready() == ["a", "d"]


def test_model_affinity_weighs_loading_against_priority():
    jobs = [Job("wan", cost=10, model="wan"), Job("flux", cost=12, model="flux")]
    cheap_load = Scheduler(jobs, load_cost={"wan": 1, "flux": 1})
    assert cheap_load.pick(holding="wan").task == "flux"  # 12 - 1 > 10
    dear_load = Scheduler(jobs, load_cost={"wan": 5, "flux": 5})
    assert dear_load.pick(holding="wan").task == "wan"  # 12 - 5 < 10: keep the loaded model busy


def test_retries_back_off_then_give_up_and_block_only_dependents():
    jobs = [Job("bad"), Job("after_bad", ("bad",)), Job("fine")]
    s = Scheduler(jobs, max_attempts=3, backoff=1.0)
    assert s.pick(None).task == "bad"
    assert s.failed("bad", now=0.0, error="boom") == "retry"
    assert s.ready(now=0.5) == ["fine"] and s.next_wakeup(0.5) == 1.0
    assert s.pick(None, now=1.0).task == "bad"
    assert s.failed("bad", now=1.0) == "retry"
    assert s.next_wakeup(1.0) == 3.0  # 1 s, then 2 s
    assert s.pick(None, now=3.0).task == "bad"
    assert s.failed("bad", now=3.0) == "gave-up"
    assert s.with_status("blocked") == ["after_bad"]
    assert s.pick(None, now=3.0).task == "fine"
    s.succeeded("fine")
    assert s.finished and s.with_status("failed") == ["bad"]


def test_out_of_memory_retries_once_with_low_memory_settings():
    s = Scheduler([Job("big")], max_attempts=5)
    first = s.pick(None)
    assert not first.low_memory
    assert s.failed("big", now=0, out_of_memory=True) == "retry-low-memory"
    second = s.pick(None)
    assert second.low_memory and second.attempt == 2
    assert s.failed("big", now=0, out_of_memory=True) == "gave-up"


def test_simulation_basics():
    four = [Job(f"t{i}", cost=1) for i in range(4)]
    assert simulate(four, 2).makespan == 2
    chain = [Job("a", cost=2), Job("b", ("a",), cost=3), Job("c", ("b",), cost=1)]
    assert simulate(chain, 8).makespan == critical_path(chain) == 6


def test_simulation_counts_model_loads_and_affinity_avoids_thrashing():
    jobs = [Job(f"{m}{i}", cost=10, model=m) for i in range(6) for m in ("wan", "ltx")]
    result = simulate(jobs, 2, load_cost={"wan": 5, "ltx": 5})
    assert result.loads == 2  # each worker loads one model once and keeps it
    assert result.makespan == 5 + 6 * 10


@st.composite
def dags(draw):
    n = draw(st.integers(1, 25))
    jobs = []
    for i in range(n):
        deps = tuple(sorted(draw(st.sets(st.integers(0, i - 1), max_size=3)))) if i else ()
        jobs.append(Job(f"t{i:02d}", tuple(f"t{d:02d}" for d in deps), cost=draw(st.integers(1, 20))))
    return jobs


@settings(max_examples=200, deadline=None)
@given(jobs=dags(), workers=st.integers(1, 6))
def test_simulated_schedules_respect_dependencies_and_bounds(jobs, workers):
    result = simulate(jobs, workers)
    total = sum(j.cost for j in jobs)
    start = {task: t for t, _, task in result.order}
    finish = {j.id: start[j.id] + j.cost for j in jobs}
    assert all(start[j.id] >= finish[d] for j in jobs for d in j.deps)
    assert result.makespan >= max(critical_path(jobs), total / workers) - 1e-9
    # Graham's bound for list scheduling
    assert result.makespan <= total / workers + critical_path(jobs) * (1 - 1 / workers) + 1e-9


def test_a_fatal_failure_gives_up_at_once():
    s = Scheduler([Job("a"), Job("b", ("a",)), Job("c")], max_attempts=5)
    s.pick(None)
    assert s.failed("a", 0.0, "bad storyboard", fatal=True) == "gave-up"
    assert s.state["a"].status == "failed" and s.state["b"].status == "blocked" and s.ready() == ["c"]


def test_workers_take_only_the_jobs_they_accept():
    s = Scheduler([Job("model", cost=9, where="device"), Job("encode", cost=1), Job("mp4", cost=0.5, where="here")])
    lane = s.pick(None, accepts=lambda job: job.where != "device")
    assert lane.task == "encode"  # the model task ranks higher, but a lane has no device
    assert s.pick(None, accepts=lambda job: job.where == "any") is None  # the rest need a device or this process
    assert s.pick(None).task == "model"


def test_a_damaged_input_runs_again_before_its_reader_without_counting_a_try():
    s = Scheduler([Job("read", ("kf",))], done={"kf"}, max_attempts=1)
    attempt = s.pick(None)
    assert attempt.task == "read"
    s.reopen(Job("kf", cost=2), "read")  # "read" found kf's cached output damaged
    assert s.ready() == ["kf"] and s.state["read"].status == "waiting"
    s.pick(None)
    s.succeeded("kf")
    again = s.pick(None)
    assert again.task == "read" and again.attempt == 1  # not a second try: max_attempts=1 still allows it
    s.succeeded("read")
    assert s.finished
