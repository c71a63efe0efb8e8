"""The LLM planner: a prompt becomes a storyboard through any OpenAI-compatible chat-completions endpoint.

Works with vLLM, Ollama, llama.cpp's server, LM Studio and OpenAI. The model is asked for a storyboard that
follows longvid's JSON Schema, through ``response_format`` where the server supports it and by instruction
otherwise (the JSON is then extracted from the reply). The reply is data, never code: it goes through the same
validation as a user's YAML, and the problems found are sent back to the model for a bounded number of repair
rounds. Durations a little off the target are fixed here, and said so.

The API key comes from an environment variable and is only ever put in the Authorization header.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from longvid.errors import PlanningError, StoryboardError, UserError
from longvid.planners.request import check_request
from longvid.storyboard import StoryboardSpec, json_schema, validate_data

KEY_ENVS = ("LONGVID_LLM_API_KEY", "OPENAI_API_KEY")
CAMERAS = "static, push-in, pull-out, zoom-in, zoom-out, pan-left, pan-right, tilt-up, tilt-down"
DURATION_FIX_LIMIT = 0.1  # the planner fixes durations off the target by up to 10%; more goes back to the model


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to ask.

    Args:
        base_url: the OpenAI-compatible API root, e.g. ``http://localhost:11434/v1`` (Ollama) or
            ``http://localhost:8000/v1`` (vLLM).
        model: the model name the server knows.
        api_key_env: the environment variable holding the API key (default: LONGVID_LLM_API_KEY, then
            OPENAI_API_KEY); local servers need none.
        timeout: seconds to wait for one reply.
        retries: retries of a request after a timeout, a 429 or a 5xx.
        backoff: seconds before the first retry, doubling after (a Retry-After header wins).
        repair_rounds: how many times validation errors are sent back to the model.
        temperature: sampling temperature.
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 1.0
    repair_rounds: int = 3
    temperature: float = 0.4

    def api_key(self) -> str | None:
        names = (self.api_key_env,) if self.api_key_env else KEY_ENVS
        return next((os.environ[n] for n in names if os.environ.get(n)), None)


@dataclass
class LLMPlan:
    """The result: the storyboard, what the planner fixed or noticed, and how many requests it took."""

    storyboard: StoryboardSpec
    notes: list[str] = field(default_factory=list)
    rounds: int = 1
    requests: int = 1
    used_fallback: bool = False


def system_prompt(duration: float, schema: dict | None) -> str:
    text = f"""You are a film director writing a storyboard for longvid, which renders each shot with a video
diffusion model. Reply with one JSON object only: no prose, no markdown.

Write:
- "title": a short title.
- "style": one line of visual style appended to every prompt (lens, lighting, palette, medium).
- "characters": the cast, name -> one concrete visual description that fixes how they look in every shot: age and
  build, face, hair (colour, length, style), clothing with its colours, and one distinctive detail. Names are single
  lowercase words.
- "places": the sets and locations that appear in more than one shot, name -> a concrete visual description
  (architecture or landscape, materials, colours, light, time of day). Names are single lowercase words, distinct
  from the characters' names.
- Refer to a character or a place in any prompt as {{name}} (in braces), every time it appears, so it looks the same
  in every shot; never describe it again in the prompt, and never use a name that is not defined.
- "shots": in order. Each shot has "id" (short, lowercase, unique), "prompt" (what is seen and what moves, one or
  two sentences, present tense), "duration" in seconds, "camera" (one of: {CAMERAS}), "keyframes" at the story
  beats inside the shot (a list of {{"at": seconds from the shot's start, "prompt": what is seen at that moment}};
  "at" between 0 and the shot's duration), and "transition": "cut", or {{"type": "crossfade", "duration": 0.5}}
  for a passage of time (shorter than both neighbouring shots). The last shot ends with a cut.
- Shots of 2 to 10 seconds. The durations must add up to exactly {duration:g} seconds.
- Do not include fps, width, height, seed, models, continuity or qa: longvid sets them."""
    if schema is not None:
        text += "\n\nThe reply must follow this JSON Schema:\n" + json.dumps(schema, separators=(",", ":"))
    return text


def extract_json(content: str) -> Any:
    """The JSON object in a reply: the whole reply, a fenced ```json block, or the first balanced {...}.

    Raises:
        ValueError: when there is none; the message says why, for the repair round.
    """
    text = content.strip()
    candidates = [text]
    candidates += re.findall(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    start = text.find("{")
    if start >= 0:
        depth, in_string, escaped = 0, False, False
        for i, ch in enumerate(text[start:], start):
            if in_string:
                escaped = ch == "\\" and not escaped
                if ch == '"' and not escaped:
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    candidates.append(text[start : i + 1])
                    break
    error = None
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            error = error or exc
    raise ValueError(f"the reply is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
                     if error else "the reply contains no JSON object")


def fit_durations(data: dict, target: float) -> str | None:
    """Fix shot durations that miss `target` by a little; returns a note, or raises ValueError when far off."""
    shots = data.get("shots")
    if not isinstance(shots, list) or not shots or not all(
            isinstance(s, dict) and isinstance(s.get("duration"), int | float) and s["duration"] > 0 for s in shots):
        return None  # validation will name the problem
    total = math.fsum(s["duration"] for s in shots)
    if abs(total - target) < 1e-6:
        return None
    if abs(total - target) > DURATION_FIX_LIMIT * target:
        raise ValueError(f"the shot durations add up to {total:g} s; they must add up to exactly {target:g} s")
    scale = target / total
    for shot in shots:
        shot["duration"] = round(shot["duration"] * scale, 2)
    shots[-1]["duration"] = round(shots[-1]["duration"] + target - math.fsum(s["duration"] for s in shots), 6)
    for shot in shots:  # keyframes keep their place relative to the shot
        for kf in shot.get("keyframes") or []:
            if isinstance(kf, dict) and isinstance(kf.get("at"), int | float):
                kf["at"] = min(round(kf["at"] * scale, 3), shot["duration"])
    return f"the model's durations added up to {total:g} s; scaled them to {target:g} s"


class ChatClient:
    """Minimal chat-completions client: timeouts, retries with backoff on 429 and 5xx, clear errors."""

    def __init__(self, config: LLMConfig, sleep: Callable[[float], None] = time.sleep):
        self.config, self.sleep = config, sleep
        self.requests = 0

    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def _send(self, method: str, path: str, body: dict | None) -> tuple[int, Any, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self.config.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._url(path), data=data, headers=headers, method=method)
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                return response.status, _json_or_text(response.read()), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, _json_or_text(exc.read()), exc.headers
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise TimeoutError from None
            raise UserError(
                f"cannot reach the LLM server at {self.config.base_url} ({exc.reason}); is it running? "
                f"e.g. `ollama serve` (base URL http://localhost:11434/v1) or `vllm serve MODEL` "
                f"(http://localhost:8000/v1)") from None

    def complete(self, body: dict) -> tuple[int, Any]:
        """POST /chat/completions; retries timeouts, 429 and 5xx; returns the final (status, payload)."""
        for attempt in range(self.config.retries + 1):
            wait = self.config.backoff * 2**attempt
            try:
                status, payload, headers = self._send("POST", "/chat/completions", body)
            except TimeoutError:
                if attempt == self.config.retries:
                    raise PlanningError(
                        f"the LLM server at {self.config.base_url} did not answer within {self.config.timeout:g} s, "
                        f"{attempt + 1} times; raise --llm-timeout or use a smaller model") from None
                self.sleep(wait)
                continue
            if status == 429 or status >= 500:
                if attempt == self.config.retries:
                    raise PlanningError(f"the LLM server answered {status} {attempt + 1} times: {_error_text(payload)}")
                retry_after = headers.get("Retry-After") if headers else None
                self.sleep(float(retry_after) if retry_after and retry_after.replace(".", "").isdigit() else wait)
                continue
            return status, payload
        raise AssertionError("unreachable")

    def models(self) -> list[str]:
        """Model names the server lists (empty when it cannot say)."""
        try:
            status, payload, _ = self._send("GET", "/models", None)
        except (UserError, TimeoutError):
            return []
        if status != 200 or not isinstance(payload, dict):
            return []
        return sorted(str(m.get("id")) for m in payload.get("data", []) if isinstance(m, dict))


def plan_with_llm(prompt: str, config: LLMConfig, *, duration: float = 60.0, fps: float = 24, width: int = 832,
                  height: int = 480, seed: int = 0, style: str = "", fallback: str | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> LLMPlan:
    """Ask the model for a storyboard of `duration` seconds telling `prompt`; repair, fix and validate it.

    Args:
        fallback: ``rules`` to return the rule-based planner's storyboard (with a note) if the model fails.

    Raises:
        UserError: an empty prompt or a bad duration (as the rules planner says), a server that cannot be
            reached, refuses the key, or does not know the model.
        PlanningError: the model never produced a valid storyboard, or the server kept failing.
    """
    check_request(prompt, duration)
    try:
        return _plan(prompt, config, duration, fps, width, height, seed, style, sleep)
    except (PlanningError, UserError) as exc:
        if fallback != "rules":
            raise
        from longvid.planners.rules import plan_from_prompt

        spec = plan_from_prompt(prompt, duration=duration, fps=fps, width=width, height=height, seed=seed, style=style)
        return LLMPlan(spec, [f"the LLM planner failed ({exc}); used the rule-based planner instead"], 0, 0, True)


def _plan(prompt, config, duration, fps, width, height, seed, style, sleep) -> LLMPlan:
    client = ChatClient(config, sleep)
    schema = json_schema()
    structured = True  # response_format with the schema, until the server says it cannot
    messages = [
        {"role": "system", "content": system_prompt(duration, schema)},
        {"role": "user", "content": f"Target length: {duration:g} seconds.\n\nStory: {prompt}"},
    ]
    notes: list[str] = []
    problems = ""
    for round_ in range(1, config.repair_rounds + 2):
        body = {"model": config.model, "messages": messages, "temperature": config.temperature}
        if structured:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "longvid_storyboard", "schema": schema, "strict": False}}
        status, payload = client.complete(body)
        if status == 400 and structured and "response_format" in _error_text(payload).lower():
            structured = False  # the schema is in the system prompt already: ask by instruction
            notes.append("the server does not take response_format; asked for JSON by instruction")
            status, payload = client.complete({k: v for k, v in body.items() if k != "response_format"})
        _check_status(status, payload, config, client)
        content = _content(payload)
        try:
            data = extract_json(content)
            if not isinstance(data, dict):
                raise ValueError("the reply must be one JSON object (a storyboard), not a list or a value")
            for key in ("models", "continuity"):
                data.pop(key, None)
            data |= {"fps": fps, "width": width, "height": height, "seed": seed}
            if style and not data.get("style"):
                data["style"] = style
            note = fit_durations(data, duration)
            spec = validate_data(data)
        except (ValueError, StoryboardError) as exc:
            problems = str(exc)
            messages += [
                {"role": "assistant", "content": content},
                {"role": "user", "content": "That storyboard cannot be used:\n" + problems +
                 "\n\nReply with the whole corrected storyboard as one JSON object."},
            ]
            continue
        if note:
            notes.append(note)
        return LLMPlan(spec, notes, round_, client.requests)
    raise PlanningError(f"the model gave no valid storyboard in {config.repair_rounds + 1} rounds; "
                        f"the last problems:\n{problems}")


def _check_status(status: int, payload: Any, config: LLMConfig, client: ChatClient) -> None:
    if status == 200:
        return
    detail = _error_text(payload)
    if status == 404:
        known = client.models()
        listing = f"; it has: {', '.join(known)}" if known else ""
        raise UserError(f"the LLM server at {config.base_url} does not know model {config.model!r} "
                        f"(404: {detail}){listing}")
    if status in (401, 403):
        names = config.api_key_env or " or ".join(KEY_ENVS)
        raise UserError(f"the LLM server refused the request ({status}: {detail}); set the API key in {names}")
    raise PlanningError(f"the LLM server answered {status}: {detail}")


def _content(payload: Any) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise PlanningError(f"the reply is not a chat completion: {str(payload)[:200]}") from None
    return content if isinstance(content, str) else json.dumps(content)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(payload)[:300]
