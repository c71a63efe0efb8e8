"""The flow-aligned blend: two chunks a few pixels apart, on a real frame, join without ghosting."""

from __future__ import annotations

import numpy as np
import pytest

from longvid.stitching.blend import blend_chunks
from longvid.timing import chunk_windows
from tests.conftest import CLIPS, decode, needs_opencv

INNER = np.s_[:, 8:-8, 8:-8]  # away from the edges, which a move repeats


@needs_opencv
@pytest.mark.skipif(not (CLIPS / "cat.mp4").exists(), reason="../shared/data/clips is not here")
def test_a_chunk_three_pixels_off_is_moved_back_before_the_ramp_and_stays_there():
    frame = decode(CLIPS / "cat.mp4")[0]
    still = np.stack([frame] * 40)  # a locked-off shot
    windows = chunk_windows(40, 24, 8)  # chunks 0-24 and 16-40, overlapping over 16-24
    chunks = [still[w.start:w.end] for w in windows]
    chunks[1] = np.roll(chunks[1], 3, axis=2)  # the second chunk sits 3 pixels to the right

    plain = np.stack(list(blend_chunks(windows, lambda i: chunks[i], "cosine")))
    aligned = np.stack(list(blend_chunks(windows, lambda i: chunks[i], "cosine", align="flow")))

    def error(video: np.ndarray, frames: slice) -> float:
        return float(np.abs(video[frames].astype(int) - still[frames])[INNER].mean())

    overlap = slice(16, 24)
    assert error(plain, overlap) > 2  # the plain ramp shows both copies: a ghost
    assert error(aligned, overlap) < 0.05 * error(plain, overlap)
    # the incoming chunk goes on where its predecessor was: no jump where it takes over alone
    assert error(aligned, slice(24, 40)) < 0.01
    assert error(plain, slice(24, 40)) > 2
