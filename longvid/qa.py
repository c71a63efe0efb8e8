"""`longvid qa`: the seam QA of a finished video, measured again from its decoded frames and its manifest; with an
identity model in the manifest, each shot's likeness to its characters measured again on the video's frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from longvid.cache import ArtifactStore, default_cache_dir
from longvid.errors import DamagedArtifactError, UserError
from longvid.manifest import keyframe_frame, manifest_path
from longvid.stitching.colour import LabStats
from longvid.stitching.seams import layout, measure


def qa_video(video: str | Path, cache_dir: str | Path | None = None) -> dict:
    """Seam QA of a rendered video, from its frames and its manifest (the keyframes, the colour anchors, from the
    cache if they are there).

    Raises:
        UserError: when the video or its manifest is missing.
    """
    video = Path(video)
    path = manifest_path(video)
    if not video.is_file() or not path.is_file():
        raise UserError(f"{video if not video.is_file() else path} not found: `longvid qa` reads a video longvid "
                        f"rendered and the manifest written beside it")
    manifest = json.loads(path.read_text())
    store = ArtifactStore(cache_dir or default_cache_dir())
    shots = layout(manifest)
    for shot, entry in zip(shots, manifest["shots"], strict=True):  # colour drift against the keyframes, if kept
        keyframes = entry["keyframes"]
        if keyframes and all(store.damage(k["cache_key"]) is None for k in keyframes):
            shot.anchors = [(keyframe_frame(entry, k), LabStats.of(store.load(k["cache_key"])))
                            for k in keyframes]
    import imageio_ffmpeg

    identity = (manifest.get("qa") or {}).get("identity")
    wanted = {s["output_frame"] for shot in (identity or {}).get("shots", []) for s in shot["samples"]}
    kept: dict[int, np.ndarray] = {}

    def frames(reader):
        width, height = next(reader)["size"]
        for n, raw in enumerate(reader):
            frame = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
            if n in wanted:
                kept[n] = frame
            yield frame

    report = measure(frames(imageio_ffmpeg.read_frames(str(video))), shots)
    report["identity"] = identity and identity_in_video(identity, kept, manifest, store)
    return report


def identity_in_video(identity: dict, frames: dict[int, np.ndarray], manifest: dict, store: ArtifactStore) -> dict:
    """The render's identity scores, and the same samples scored again as the video shows them."""
    report = {"model": identity["model"], "threshold": identity["threshold"], "summary": identity["summary"]}
    references = {r["name"]: r["cache_key"] for r in manifest.get("references", [])}
    shots = []
    try:
        from longvid.stages.identity import embed, likeness

        embedded: dict[str, np.ndarray] = {}  # a character's reference images, embedded once for all its shots
        for shot in identity["shots"]:
            samples = [s for s in shot["samples"] if s["output_frame"] in frames]
            if not samples:
                continue
            seen = embed(identity["path"], [frames[s["output_frame"]] for s in samples])
            measured = {}
            for name in shot["characters"]:
                if name not in embedded:
                    images = store.load(references[name])
                    embedded[name] = embed(identity["path"], list(images[None] if images.ndim == 3 else images))
                scores = likeness(seen, embedded[name])
                measured[name] = {"mean": round(float(scores.mean()), 4), "worst": round(float(scores.min()), 4)}
            shots.append({"shot": shot["shot"], "rendered": shot["characters"], "video": measured})
    except (UserError, DamagedArtifactError, KeyError) as exc:  # no model here, or the references left the cache
        return report | {"shots": [{"shot": s["shot"], "rendered": s["characters"], "video": None}
                                   for s in identity["shots"]], "not_measured": str(exc)}
    return report | {"shots": shots, "not_measured": None}
