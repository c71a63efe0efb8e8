"""A default nobody wrote is legal for the family and strategy in use: the overlap moves to the nearest legal value,
and a plan note says so."""

from __future__ import annotations

import pytest

from longvid import timing
from longvid.errors import StoryboardError
from longvid.families import FAMILIES, KNOWN_CHECKPOINTS
from longvid.storyboard.load import validate_data
from longvid.storyboard.schema import ContinuitySpec, StoryboardSpec

STRATEGIES = [s for s in ContinuitySpec.model_fields["strategy"].annotation.__args__ if s != "cut"]
DEFAULT = ContinuitySpec.model_fields["overlap"].default


def family_of(cls: str) -> str:
    return next(name for name, family in FAMILIES.items() if cls in family.pipelines)


def board(model: str, strategy: str, **continuity) -> dict:
    return {"width": 64, "height": 64, "models": {"video": {"family": family_of(KNOWN_CHECKPOINTS[model][0]),
                                                            "model": model}},
            "continuity": {"strategy": strategy, **continuity}, "shots": [{"prompt": "a cat", "duration": 8}]}


def overlap_problems(data: dict) -> list[str]:
    """What validation says about `overlap` (it may refuse the pairing for other reasons: not asked here)."""
    try:
        validate_data(data)
    except StoryboardError as exc:
        return [p.message for p in exc.problems if "`overlap`" in p.message]
    return []


@pytest.mark.parametrize("model", sorted(KNOWN_CHECKPOINTS))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_unwritten_overlap_is_legal_for_every_known_checkpoint_and_strategy(model, strategy):
    assert overlap_problems(board(model, strategy)) == []
    spec = StoryboardSpec.model_validate(board(model, strategy))
    cont = spec.continuity_for(spec.shots[0])
    latent = spec.overlap_latent(strategy)
    assert cont.overlap in timing.legal_overlaps(spec.chunk_length, latent)
    note = spec.overlap_note(spec.shots[0])
    assert (note is None) == (cont.overlap == DEFAULT)
    if note:  # the nearest legal value, and the note says why and how to choose another
        assert abs(cont.overlap - DEFAULT) == min(abs(o - DEFAULT) for o in timing.legal_overlaps(spec.chunk_length,
                                                                                                   latent))
        assert f"continuity.overlap {DEFAULT} -> {cont.overlap}" in note and "set `overlap`" in note


@pytest.mark.parametrize("model, strategy, legal", [
    ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "latent-blend", 9),
    ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "shared-noise", 9),
    ("Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers", "diffusion-forcing", 9),
])
def test_the_cases_the_issue_names_move_to_the_nearest_legal_overlap(model, strategy, legal):
    spec = validate_data(board(model, strategy))
    assert spec.continuity_for(spec.shots[0]).overlap == legal
    # a user who wrote 8 is still told it is not legal, not silently overruled
    assert StoryboardSpec.model_validate(board(model, strategy, overlap=DEFAULT)).overlap_note() is None
    assert any("must be 1 more than a multiple of 4" in m for m in overlap_problems(board(model, strategy,
                                                                                          overlap=DEFAULT)))


def test_a_plan_says_once_that_it_moved_the_overlap():
    from longvid.planners.compile import compile_storyboard

    data = board("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "latent-blend")
    data["shots"] = [{"prompt": "a cat", "duration": 12}, {"prompt": "a dog", "duration": 12}]
    plan = compile_storyboard(validate_data(data))
    moved = [n for n in plan.notes if "continuity.overlap 8 -> 9" in n]
    assert len(moved) == 1, plan.notes
    # latent-blend denoises a shot's windows together: each overlaps the one before by the moved 9 frames
    for chunk in plan.graph.of_kind("chunk"):
        assert [w[3] for w in chunk.params.windows] == [0, 9, 9]
    # the preview draws frames from time alone: 8 is legal there, and nothing is said
    data["models"]["video"] = {"family": "preview"}
    assert not [n for n in compile_storyboard(validate_data(data)).notes if "continuity.overlap" in n]
