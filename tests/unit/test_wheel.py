"""The package as users install it: a wheel built from this tree holds every file the package reads at run time,
and the studio serves its page from the installed wheel, not from the source tree."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, requires, write


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a copy of the tree as a fresh clone has it: an earlier build's build/ and *.egg-info would otherwise
    # lend their file lists to this one and hide what pyproject.toml leaves out
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", ".venv*", "__pycache__", ".pytest_cache", ".pytest-models",
        ".hypothesis", ".ruff_cache", "out", "*.mp4"))
    # the build backend pyproject.toml asks for: the one installed here, else pip fetches it as users' pip does
    isolation = ["--no-build-isolation"] if _has_setuptools(77) else []
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), *isolation,
                             str(source)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    (found,) = out.glob("longvid-*.whl")
    return found


def _has_setuptools(major: int) -> bool:
    spec = importlib.util.find_spec("setuptools")
    if spec is None:
        return False
    import setuptools

    return int(setuptools.__version__.split(".")[0]) >= major


def package_files() -> set[str]:
    """Every file of the package in the source tree (its modules and the data it reads), as wheel paths."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "longvid").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith((".pyc", ".pyo"))}


def test_the_wheel_holds_every_file_of_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = {f for f in package_files() if not f.endswith(".py")}
    assert {"longvid/studio/static/index.html", "longvid/studio/static/studio.css",
            "longvid/studio/static/studio.js"} <= data
    assert package_files() - names == set()
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert re.search(r"longvid\s*=\s*longvid\.cli:main", zipfile.ZipFile(wheel).read(entry).decode())


@requires("starlette", "studio")
def test_the_studio_serves_its_page_from_the_installed_wheel(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a wheel's files are its install, module for module
    board = write(tmp_path / "story.yaml", "fps: 12\nwidth: 64\nheight: 64\nshots:\n  - {prompt: a fox, duration: 1}\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import longvid; assert longvid.__file__.startswith(sys.argv[1]);"
            " from longvid.cli import main; sys.exit(main(sys.argv[2:]))")
    server = subprocess.Popen([sys.executable, "-c", code, str(site), "studio", str(board), "--no-browser",
                               "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=tmp_path)
    try:
        address = None
        deadline = time.monotonic() + 60
        while address is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            match = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
            address = match and match[1]
        assert address, "the studio printed no address"
        try:
            page = urllib.request.urlopen(address, timeout=30)  # it listens once it has printed its address
        except urllib.error.HTTPError as exc:  # before package data was declared: 500, no index.html
            pytest.fail(f"the studio answered {exc.code}: {exc.read()[:200]!r}")
        body = page.read().decode()
        assert page.status == 200 and "<html" in body.lower() and "studio.js" in body
    finally:
        server.terminate()
        server.wait(timeout=30)
