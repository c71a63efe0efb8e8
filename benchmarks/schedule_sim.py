"""Simulate longvid's scheduler on a 20-shot, 5-minute storyboard on 1, 2, 4 and 8 devices.

    python benchmarks/schedule_sim.py

The render graph is the one longvid really compiles (keyframes, chunks, interpolation, encode segments and the
concat, with their dependencies); only the durations come from a cost model of H100 timings:

| work | seconds on one H100 | source |
| --- | --- | --- |
| video chunk, 81 frames at 1360x768, 50 steps | 550 | CogVideoX1.5-5B, CogVideoX README ("Single H100: ~550 seconds (5-second video)") |
| shorter chunk | 550 x frames / 81 | assumption: linear in frames (attention is superlinear, so this flatters short chunks) |
| video model load | 68 | Wan2.1-I2V-14B official load time in the LightX2V benchmark (H200); assumed similar for a 5B model |
| keyframe, 1024 px, 30 steps | 5 | assumption (SDXL-class model) |
| keyframe model load | 20 | assumption |
| interpolation, 2x, per output frame | 0.01 | assumption: RIFE at ~100 fps on an H100 (its paper reports 30+ fps for 2x 720p on a 2080 Ti) |
| interpolation model load | 2 | assumption |
| encoding a segment (CPU) | 0.005 per frame | assumption: x264 at ~200 fps; joining the segments: 0 |

Baselines: the lower bound max(critical path, total work / devices), where work excludes model loads; and
rendering shot by shot on one device, loading each model once per shot, as a per-shot script would.
"""

from __future__ import annotations

import argparse
import sys

import longvid
from longvid.execution.scheduler import Job, critical_path, simulate

CHUNK_SECONDS_81 = 550.0
LOAD = {"video": 68.0, "keyframes": 20.0, "interpolation": 2.0}
KEYFRAME_SECONDS = 5.0
INTERPOLATION_PER_FRAME = 0.01
STITCH_PER_FRAME = 0.005


def storyboard(shots: int = 20, minutes: float = 5.0) -> longvid.StoryboardSpec:
    """20 shots of 15 s at 32 fps, generated at 16 fps (CogVideoX1.5's rate) in 81-frame chunks, interpolated 2x."""
    story = longvid.Storyboard("Schedule simulation", fps=32, width=1360, height=768, seed=0,
                               models={"video": {"chunk_frames": 81}, "interpolation": {"factor": 2}},
                               continuity={"overlap": 8})
    seconds = minutes * 60 / shots
    for i in range(shots):
        shot = story.shot(f"s{i:02d}", f"beat number {i}", duration=seconds)
        shot.keyframe(at=seconds, prompt=f"end of beat {i}")
        if i % 5 == 4 and i + 1 < shots:
            shot.crossfade(0.5)
    return story.build()


def jobs(plan) -> list[Job]:
    out = []
    for task in plan.graph:
        if task.kind == "keyframe":
            cost, model = KEYFRAME_SECONDS, "keyframes"
        elif task.kind == "chunk":
            cost, model = CHUNK_SECONDS_81 * task.params.frames / 81, "video"
        elif task.kind == "interpolate":
            cost, model = INTERPOLATION_PER_FRAME * task.params.frames, "interpolation"
        else:  # encoding a segment, or joining them (stream copy: nearly free)
            cost, model = (STITCH_PER_FRAME * task.frames if task.kind == "encode" else 0.0), None
        out.append(Job(task.id, task.deps, cost, model))
    return out


def shot_by_shot(plan, job_list: list[Job]) -> float:
    cost = {j.id: j.cost for j in job_list}
    total = sum(cost[t] for t in plan.encode_tasks) + cost["concat"]
    for shot in plan.shots:
        total += LOAD["keyframes"] + sum(cost[k] for k in shot.keyframe_tasks)
        total += LOAD["video"] + sum(cost[c] for c in shot.chunk_tasks)
        if shot.interpolate_task:
            total += LOAD["interpolation"] + cost[shot.interpolate_task]
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    plan = longvid.compile_storyboard(storyboard())
    job_list = jobs(plan)
    work = sum(j.cost for j in job_list)
    path = critical_path(job_list)
    serial = shot_by_shot(plan, job_list)
    kinds = {k: len(plan.graph.of_kind(k)) for k in ("keyframe", "chunk", "interpolate")}
    print(f"{len(plan.shots)} shots, {plan.spec.duration:g} s at {plan.spec.fps:g} fps; tasks: {kinds}; "
          f"total work {work / 3600:.2f} h, critical path {path / 60:.1f} min, shot by shot {serial / 3600:.2f} h\n")
    print("| devices | makespan | lower bound | makespan / bound | model loads | speed-up vs shot by shot |")
    print("|---|---|---|---|---|---|")
    verdicts = []
    for devices in args.devices:
        result = simulate(job_list, devices, load_cost=LOAD)
        bound = max(path, work / devices)
        ratio = result.makespan / bound
        speedup = serial / result.makespan
        print(f"| {devices} | {result.makespan / 3600:.2f} h | {bound / 3600:.2f} h | {ratio:.3f} | {result.loads} | "
              f"{speedup:.1f}x |")
        if devices == 8:
            verdicts.append(("within 10% of the bound at 8 devices", ratio <= 1.10))
            verdicts.append(("at least 6x faster than shot by shot at 8 devices", speedup >= 6))
    print()
    for goal, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}: {goal}")
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
