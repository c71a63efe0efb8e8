"""`longvid qa`: the seam QA of a finished video, measured again from its decoded frames and its manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from longvid.cache import ArtifactStore, default_cache_dir
from longvid.errors import UserError
from longvid.manifest import manifest_path
from longvid.stitching.colour import LabStats
from longvid.stitching.seams import layout, measure


def qa_video(video: str | Path, cache_dir: str | Path | None = None) -> dict:
    """Seam QA of a rendered video, from its frames and its manifest (the colour anchors from the cache if there).

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
    for shot, entry in zip(shots, manifest["shots"], strict=True):
        opening = next((k for k in entry["keyframes"] if k["frame"] == entry["handles"]["head"]), None)
        if opening and store.damage(opening["cache_key"]) is None:
            shot.anchor = LabStats.of(store.load(opening["cache_key"]))
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(video))
    width, height = next(reader)["size"]
    return measure((np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader), shots)
