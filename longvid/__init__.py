"""longvid: render minutes-long, seamless videos from a storyboard with diffusion models.

```python
import longvid

story = longvid.Storyboard("Demo", width=640, height=352)
story.shot("intro", "a paper boat on a rainy street", duration=3, camera="push-in")
longvid.render(story, "demo.mp4")
```
"""

__version__ = "0.1.0"

from longvid.errors import LongvidError, Problem, RenderError, StoryboardError, UserError  # noqa: E402
from longvid.graph import RenderGraph, Task, build_shot_graph  # noqa: E402
from longvid.planners.compile import RenderPlan, compile_storyboard  # noqa: E402
from longvid.planners.llm import LLMConfig, LLMPlan, plan_with_llm  # noqa: E402
from longvid.planners.rules import plan_from_prompt  # noqa: E402
from longvid.render import TaskFailedError, render, status  # noqa: E402
from longvid.scene import Shot, Storyboard  # noqa: E402
from longvid.storyboard import StoryboardSpec, json_schema, load_storyboard  # noqa: E402

__all__ = [
    "LLMConfig",
    "LLMPlan",
    "LongvidError",
    "Problem",
    "RenderError",
    "RenderGraph",
    "RenderPlan",
    "Shot",
    "Storyboard",
    "StoryboardError",
    "StoryboardSpec",
    "Task",
    "TaskFailedError",
    "UserError",
    "__version__",
    "build_shot_graph",
    "compile_storyboard",
    "json_schema",
    "load_storyboard",
    "plan_from_prompt",
    "plan_with_llm",
    "render",
    "status",
]
