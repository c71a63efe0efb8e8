"""`longvid validate --memory` before any download: a well-known hub id is planned from its published configs."""

from __future__ import annotations

from tests.conftest import ROOT, run_cli


def test_a_known_hub_id_is_planned_from_its_published_configs():
    board = ROOT / "examples" / "models" / "wan_draft_refine.yaml"
    roomy, small = (run_cli("validate", str(board), "--memory", "--device-memory", size) for size in ("80GiB", "24GiB"))
    assert roomy.returncode == small.returncode == 0, small.stderr
    rows = [{line.split()[0]: line for line in r.stdout.splitlines() if line.startswith(("chunk:", "decode:", "refine:"))}
            for r in (roomy, small)]
    assert {"chunk:dawn:0", "decode:dawn:0", "refine:dawn:0"} <= set(rows[0])
    # 14B in bfloat16 is 28 GiB of transformer: whole on 80 GiB, layer by layer on 24 GiB
    assert "offload none" in rows[0]["chunk:dawn:0"] and "offload sequential" in rows[1]["chunk:dawn:0"]
    assert all(line.endswith("fits") for line in rows[1].values())


def test_a_bad_device_memory_is_refused():
    board = ROOT / "examples" / "models" / "wan_draft_refine.yaml"
    result = run_cli("validate", str(board), "--memory", "--device-memory", "lots")
    assert result.returncode == 2 and "24GiB" in result.stderr
