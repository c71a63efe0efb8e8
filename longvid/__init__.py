"""longvid: render minutes-long, seamless videos from a storyboard with diffusion models.

```python
import longvid

story = longvid.Storyboard("Demo", width=640, height=352)
story.shot("intro", "a paper boat on a rainy street", duration=3, camera="push-in")
longvid.render(story, "demo.mp4")
```

The public names are imported when first used, so ``import longvid`` (and ``longvid --help``) stays fast.
`render()` lives in `longvid.rendering`: a submodule called `render` would replace the function on first import.
"""

from __future__ import annotations

import importlib
from typing import Any

from longvid._version import __version__  # noqa: F401 - public, in __all__

_WHERE = {
    "LLMConfig": "longvid.planners.llm",
    "LLMPlan": "longvid.planners.llm",
    "LongvidError": "longvid.errors",
    "PlanError": "longvid.errors",
    "Problem": "longvid.errors",
    "RenderError": "longvid.errors",
    "RenderGraph": "longvid.graph",
    "RenderPlan": "longvid.planners.compile",
    "Shot": "longvid.scene",
    "Storyboard": "longvid.scene",
    "StoryboardError": "longvid.errors",
    "StoryboardSpec": "longvid.storyboard",
    "Task": "longvid.tasks",
    "TaskFailedError": "longvid.errors",
    "UserError": "longvid.errors",
    "build_shot_graph": "longvid.graph",
    "compile_storyboard": "longvid.planners.compile",
    "export_timeline": "longvid.export",
    "json_schema": "longvid.storyboard",
    "load_storyboard": "longvid.storyboard",
    "plan_from_prompt": "longvid.planners.rules",
    "plan_with_llm": "longvid.planners.llm",
    "render": "longvid.rendering",
    "render_audio": "longvid.rendering",
    "status": "longvid.rendering",
}

__all__ = sorted([*_WHERE, "__version__"])


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'longvid' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__
