"""What every planner checks first, so the rules planner and the LLM planner refuse the same input the same way."""

from __future__ import annotations

from longvid.errors import UserError

MIN_DURATION = 0.25  # seconds: the rules planner's smallest shot; shorter is not a video to plan


def check_request(prompt: str, duration: float) -> None:
    """Raises:
        UserError: an empty prompt, or a duration that is not positive or too short to plan.
    """
    if not prompt or not prompt.strip(" \t\n.;,"):
        raise UserError("the prompt is empty: say what the video is about")
    if duration <= 0:
        raise UserError(f"`duration` ({duration:g}) must be positive")
    if duration < MIN_DURATION:
        raise UserError(f"`duration` ({duration:g}) is too short to plan: at least {MIN_DURATION:g} s")
