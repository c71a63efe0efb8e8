"""The manifest: what was rendered, from what, with which seeds and keys (docs/architecture.md, "Manifest").

Its size follows the number of shots, chunks and segments, never the number of frames.
"""

from __future__ import annotations

import json
from pathlib import Path

from longvid._version import __version__
from longvid.cache import ArtifactStore
from longvid.execution.executor import Execution
from longvid.planners.compile import RenderPlan
from longvid.planners.memory_plan import planned_settings
from longvid.stages import get_spec


def manifest_path(output: str | Path) -> Path:
    """``OUT.mp4`` -> ``OUT.manifest.json``."""
    return Path(output).with_suffix(".manifest.json")


def references(plan: RenderPlan, task_id: str) -> dict:
    """A character's or place's reference: the user's images, or that it was generated; the shots that use it."""
    p = plan.graph[task_id].params
    return {"task": task_id, "name": p.name, "entity": p.entity, "description": p.description,
            "images": [image.content() for image in p.images], "generated": not p.images,
            "shots": [sp.shot.shot_id for sp in plan.shots if p.name in plan.spec.mentions(sp.shot)]}


def build_manifest(plan: RenderPlan, keys: dict[str, str], store: ArtifactStore, execution: Execution, output: Path,
                   *, crf: int, preset: str, render_seconds: float, devices: list[str], executor: str,
                   reseed: dict[str, int] | None = None) -> dict:
    """The manifest of a finished render (its ``qa`` is filled in by the caller).

    Besides what was rendered, it keeps what rebuilds the same plan (the storyboard's file, the device memory the
    tasks were planned for, the tasks `--qa-retry` drew again): `longvid export --media per-shot` reads each shot's
    own frames, handles included, back from the cache through that plan.
    """
    spec, graph = plan.spec, plan.graph
    cached = set(execution.cached)

    def run_info(task_id: str) -> dict:
        """Where a task's output came from: the cache, this render, or (not stored) the tasks that computed it."""
        if not get_spec(graph[task_id].stage).cache:
            computed_in = execution.inline.get(task_id, [])
            return {"cache_key": keys[task_id], "stored": False, "cached": not computed_in,
                    "computed_in": computed_in, "seconds": None, "worker": None, "attempts": 0}
        record = execution.records.get(task_id) or store.record(keys[task_id]) or {}
        info = {"cache_key": keys[task_id], "stored": True, "cached": task_id in cached,
                "seconds": record.get("seconds"), "worker": record.get("worker"),
                "attempts": len(execution.failures.get(task_id, [])) + 1}
        planned = planned_settings(graph[task_id])
        if planned:  # a model task: the memory settings it was planned with, and those it ran with
            info["memory"] = {"planned": planned, "ran": record.get("ran")}
        return info

    def made_of(chunk: str, frames: str) -> dict:
        """The tasks between a chunk and its frames: its refine pass (`models.refine`), its decode (latents)."""
        out = {}
        if graph[frames].kind == "refine":
            out["refine"] = {"task": frames, "strength": graph[frames].params.strength} | run_info(frames)
            frames = graph[frames].params.source
        if frames != chunk:
            out["decode"] = {"task": frames, "tiling": graph[frames].params.tiling} | run_info(frames)
        return out

    shots = []
    for sp in plan.shots:
        t = sp.timing
        shots.append({
            "id": sp.shot.shot_id,
            "prompt": sp.shot.prompt,
            "frames": [t.start, t.end],
            "rendered": [t.render_start, t.render_end],
            "handles": {"head": t.head, "tail": t.tail},
            "seed": spec.shot_seed(sp.shot),
            "reroll": sp.shot.reroll or None,  # the takes asked for; each task below says the take it rendered
            "transition": sp.shot.transition.model_dump(exclude_none=True),
            "base_frames": sp.base_frames,
            "factor": plan.factor,
            "continuity": sp.continuity.model_dump(),
            "keyframes": [
                # `frame` on the output timeline, as its timecode; `shot_frame` within the shot's rendered frames
                {"task": k, "timecode": graph[k].params.label.timecode, "frame": t.render_start + graph[k].window[0],
                 "shot_frame": graph[k].window[0],
                 "prompt": graph[k].params.prompt,
                 "image": graph[k].params.image.content() if graph[k].params.image else None,
                 "seed": graph[k].seed, "take": graph[k].take} | run_info(k)
                for k in sp.keyframe_tasks
            ],
            "chunks": [
                {"task": c, "window": [w.start, w.end], "frames": w.frames, "used": w.used, "trimmed": w.trimmed,
                 "overlap": w.overlap, "seed": graph[c].seed, "take": graph[c].take,
                 "keyframes": [d for d in graph[c].deps if graph[d].kind == "keyframe"],
                 "anchors": [a.model_dump(mode="json", exclude_defaults=True)
                             for a in getattr(graph[c].params, "anchors", [])] or None,
                 "windows": [list(w) for w in getattr(graph[c].params, "windows", [])] or None} | run_info(c)
                | made_of(c, d) for c, d, w in zip(sp.chunk_tasks, sp.frame_tasks, sp.windows, strict=True)
            ],
            "interpolation": run_info(sp.interpolate_task) | {"task": sp.interpolate_task}
            if sp.interpolate_task else None,
        })
    return {
        "longvid_version": __version__,
        "storyboard": spec.source,
        "storyboard_hash": spec.content_hash(),
        "title": spec.title,
        "video": {"path": output.name, "fps": spec.fps, "width": plan.models.out_size[0],
                  "height": plan.models.out_size[1], "draft": plan.models.draft, "frames": plan.total_frames, "duration": plan.total_frames / spec.fps,
                  "codec": "h264", "pix_fmt": "yuv420p", "crf": crf, "preset": preset},
        "backends": {
            "keyframes": spec.models.keyframes.model_dump() | {"backend": spec.models.keyframes.engine},
            "video": spec.models.video.model_dump() | {"frame_rule": str(plan.frame_rule), "chunk_frames": plan.chunk_frames},
            "interpolation": spec.models.interpolation.model_dump() | {"resolved": plan.models.interpolation},
        },
        "continuity": spec.continuity.model_dump(),
        "execution": {"executor": executor, "devices": devices, "ran": len(execution.ran),
                      "cached": len(execution.cached), "computed_inline": len(execution.inline),
                      "retried": sorted(execution.failures), "damaged": execution.damaged,
                      "device_memory": plan.output.device_memory, "reseed": dict(reseed or {})},
        "notes": plan.notes,
        "references": [references(plan, task.id) | run_info(task.id) for task in graph if task.kind == "reference"],
        "shots": shots,
        "segments": [{"task": s, "frames": list(graph[s].window)} | run_info(s) for s in plan.encode_tasks],
        "audio": run_info("audio") | {"task": "audio", "codec": "aac"} if "audio" in keys else None,
        "soundtrack": soundtrack(keys, store, run_info) if "mix" in keys else None,
        "concat": {"task": "concat", "cache_key": keys["concat"]},
        "render_seconds": round(render_seconds, 4),
        "qa": None,
    }


def soundtrack(keys: dict[str, str], store: ArtifactStore, run_info) -> dict:
    """The mix: every source with its start, gain and length, and the loudness measured on the result."""
    record = store.record(keys["mix"]) or {}
    return run_info("mix") | {"task": "mix", "codec": "aac", "rate": record.get("rate"),
                              "channels": record.get("channels"), "samples": record.get("samples"),
                              "sources": record.get("sources"), "loudness": record.get("loudness"),
                              "clicks": record.get("clicks"),
                              "generated": [{"task": t} | run_info(t) | _sections(store, keys[t])
                                            for t in keys if t.startswith(("sound:", "music"))]}


def _sections(store: ArtifactStore, key: str) -> dict:
    record = store.record(key) or {}
    return {"rate": record.get("rate"), "samples": record.get("samples"), "sections": record.get("sections")}


def manifest_beside(video: Path) -> dict | None:
    """The manifest written beside `video`, or None when there is none or it cannot be read (unchecked: see
    `export.read_manifest` for the checked one)."""
    try:
        return json.loads(manifest_path(video).read_text())
    except (OSError, ValueError):
        return None


def keyframe_frame(shot: dict, keyframe: dict) -> int:
    """A manifest keyframe's output frame; manifests before `shot_frame` counted `frame` within the shot."""
    return keyframe["frame"] if "shot_frame" in keyframe else shot["rendered"][0] + keyframe["frame"]
