"""What the page shows, as one JSON document: the storyboard's shots on the timeline, every task's state with the
reason `longvid status` gives, thumbnails from the cache, the last render's manifest facts and flagged seams.

Built fresh on every request from the file on disk, the cache and the manifest, so the page never shows a state
the CLI would not.
"""

from __future__ import annotations

import typing
from pathlib import Path

from longvid.cache import ArtifactStore
from longvid.errors import StoryboardError
from longvid.manifest import manifest_beside
from longvid.planners.compile import Output
from longvid.rendering import plan_status, project_id
from longvid.storyboard.schema import Camera
from longvid.studio.jobs import Renders


def page_state(renders: Renders, store: ArtifactStore) -> tuple[dict, set[str]]:
    """The page's state, and the cache keys it may show (the only artifacts the server will serve)."""
    file, options = renders.storyboard, renders.options
    text, version = file.read()
    out: dict = {"file": file.path.name, "version": version, "render": renders.status(), "problems": [],
                 "video": _video(options.output)}
    manifest = manifest_beside(options.output)
    try:
        spec = file.spec(text)  # the text the version was taken from: the page's version and shots agree
    except StoryboardError as exc:  # edited elsewhere into something invalid: say so, show nothing stale
        out["problems"] = [str(p) for p in exc.problems]
        return out, set()
    plan, keys, rows = plan_status(spec, store, Output(options.crf, options.preset, str(options.output.resolve())))
    live = renders.job.live() if renders.job and renders.job.state == "running" else {}
    failed = renders.job.live() if renders.job and renders.job.state == "failed" else {}
    project = project_id(spec)
    shown: set[str] = set()

    def picture(task_id: str) -> str | None:
        """The key of a task's picture: this plan's when it is in the cache, else the last one rendered."""
        for key in (keys[task_id], (store.last(project, task_id) or {}).get("key")):
            if key and store.has(key):
                shown.add(key)
                return key
        return None

    tasks = []
    for row in rows:
        task = plan.graph[row.task]
        state = live.get(row.task)
        state = "running" if state == "running" else "failed" if failed.get(row.task) == "failed" else row.state
        tasks.append({"id": row.task, "kind": task.kind, "shot": task.shot, "state": state,
                      "reasons": list(row.reasons), "seed": _text(task.seed), "key": keys[row.task]})
    by_shot = {s["id"]: s for s in (manifest or {}).get("shots", [])}
    shots = []
    for sp in plan.shots:
        shot, t = sp.shot, sp.timing
        facts = by_shot.get(shot.shot_id)
        shots.append({
            "id": shot.shot_id, "prompt": shot.prompt, "duration": shot.duration, "camera": shot.camera,
            "transition": shot.transition.model_dump(exclude_none=True),
            "reroll": dict(getattr(shot, "reroll", None) or {}),
            "frames": [t.start, t.end], "seed": _text(spec.shot_seed(shot)), "cast": spec.mentions(shot),
            "keyframes": [kf.model_dump(mode="json", exclude_none=True) for kf in shot.keyframes],
            "pictures": [{"task": k, "timecode": plan.graph[k].params.label.timecode, "prompt": plan.graph[k].params.prompt,
                          "frame": t.render_start + plan.graph[k].window[0], "thumb": picture(k),
                          "user_image": plan.graph[k].params.image is not None}
                         for k in sp.keyframe_tasks],
            "tasks": [row["id"] for row in tasks if row["shot"] == shot.shot_id],
            "rendered": _facts(facts) if facts else None,
        })
    references = [{"name": task.params.name, "task": task.id, "thumb": picture(task.id),
                   "shots": [sp.shot.shot_id for sp in plan.shots if task.params.name in spec.mentions(sp.shot)]}
                  for task in plan.graph if task.kind == "reference"]
    out |= {"title": spec.title, "fps": spec.fps, "width": spec.width, "height": spec.height,
            "total_frames": plan.total_frames, "shots": shots, "tasks": tasks, "references": references,
            "cameras": list(typing.get_args(Camera)), "notes": plan.notes,
            "models": {"keyframes": plan.models.keyframe_model or "preview",
                       "video": spec.models.video.model or spec.models.video.family,
                       "interpolation": plan.models.interpolation},
            "qa": _flagged(manifest), "stale": sum(row["state"] != "fresh" for row in tasks)}
    return out, shown


def _video(output: Path) -> dict:
    """The video the page plays and renders to; `path` says which file it is, rendered or not."""
    try:
        stat = output.stat()
    except OSError:
        return {"exists": False, "name": output.name, "path": str(output.resolve())}
    return {"exists": True, "name": output.name, "path": str(output.resolve()), "bytes": stat.st_size,
            "mtime": stat.st_mtime}


def _facts(shot: dict) -> dict:
    """The manifest facts of one rendered shot: seeds, models' timings, takes."""
    def timing(entry: dict) -> dict:
        return {"task": entry["task"], "seed": _text(entry.get("seed")), "seconds": entry.get("seconds"),
                "worker": entry.get("worker"), "cached": entry.get("cached"), "take": entry.get("take")}

    return {"frames": shot["frames"], "seed": _text(shot["seed"]), "keyframes": [timing(k) for k in shot["keyframes"]],
            "chunks": [timing(c) for c in shot["chunks"]], "reroll": shot.get("reroll")}


def _text(seed: int | None) -> str | None:
    """Seeds are 63-bit: as text, or JavaScript rounds them to 53."""
    return None if seed is None else str(seed)


def _flagged(manifest: dict | None) -> dict:
    """The seams the last render's QA measured, and those above its threshold."""
    qa = (manifest or {}).get("qa") or {}
    threshold = qa.get("threshold", 2.0)
    seams = [{"shot": s["shot"], "chunk": s["chunk"], "frame": s["frames"][1], "score": s["score"],
              "flagged": s["score"] is not None and s["score"] > threshold} for s in qa.get("seams", [])]
    return {"threshold": threshold, "seams": seams, "summary": qa.get("summary"),
            "backends": (manifest or {}).get("backends")}
