"""The seeding rule: every random draw is seeded from (storyboard seed, shot id, task kind, index)."""

from __future__ import annotations

import hashlib

SEED_SCHEME = "longvid-seed/v1"


def derive_seed(base_seed: int, shot_id: str, kind: str, index: int = 0) -> int:
    """A stable 63-bit seed for one draw, whatever the worker count, order or device.

    Python's `hash()` is salted per process, so a cryptographic hash of the canonical tuple is used instead.
    """
    text = f"{SEED_SCHEME}|{base_seed}|{shot_id}|{kind}|{index}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
