"""Content-addressed cache keys.

A task's key is the sha256 of everything that decides its output: the stage, the stage's code version, the
canonical parameters, the seed, the model id and the keys of its inputs. Changing one shot therefore changes the
keys of that shot's tasks and of what depends on them, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def task_key(
    stage: str,
    code_version: str,
    params: Mapping[str, Any],
    seed: int | None,
    model: str | None,
    input_keys: Sequence[str],
) -> str:
    """The content signature of one task (hex sha256)."""
    payload = {
        "stage": stage,
        "code_version": code_version,
        "params": params,
        "seed": seed,
        "model": model,
        "inputs": list(input_keys),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()
