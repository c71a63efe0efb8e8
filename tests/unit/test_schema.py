"""The JSON Schema that `longvid schema` prints agrees with the loader."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from longvid.storyboard import json_schema
from tests.conftest import ROOT, SMALL


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("board", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_satisfy_the_schema(validator, board):
    assert list(validator.iter_errors(yaml.safe_load(board.read_text()))) == []


def test_schema_takes_the_cut_shorthand_and_rejects_unknown_keys(validator):
    data = yaml.safe_load(SMALL)
    data["shots"][1]["transition"] = "cut"
    assert list(validator.iter_errors(data)) == []
    data["shots"][1]["camra"] = "static"
    assert [e.message for e in validator.iter_errors(data)] == [
        "Additional properties are not allowed ('camra' was unexpected)"]


def test_schema_names_every_top_level_field():
    assert set(json_schema()["properties"]) == {"title", "fps", "width", "height", "seed", "style", "negative_prompt",
                                                "characters", "places", "models", "continuity", "qa", "audio", "shots"}


def test_schema_describes_a_shots_reroll_and_rejects_keys_that_name_no_task(validator):
    reroll = json_schema()["$defs"]["ShotSpec"]["properties"]["reroll"]
    assert "take" in reroll["description"]
    data = yaml.safe_load(SMALL)
    data["shots"][1]["reroll"] = yaml.safe_load("{chunk:1: 2, keyframe:0: 0}")
    assert list(validator.iter_errors(data)) == []
    for wrong in ({"chunk:hunt:1": 1}, {"chunk:0": -1}, {"chunk": 1}):
        data["shots"][1]["reroll"] = wrong
        assert not validator.is_valid(data), wrong
