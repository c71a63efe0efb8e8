"""The LLM planner against a real HTTP server on 127.0.0.1 that speaks chat completions and replays a script."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from longvid.errors import UserError
from longvid.planners.llm import LLMConfig, PlanningError, extract_json, plan_with_llm
from longvid.planners.rules import plan_from_prompt
from longvid.storyboard import json_schema
from tests.conftest import run_cli

GOOD = {
    "title": "The Fox and the Storm",
    "style": "hand-painted animation, warm dusk light",
    "characters": {"fox": "a small red fox with a white-tipped tail and amber eyes"},
    "places": {"den": "a snow-covered den under pine roots, blue dusk light"},
    "shots": [
        {"id": "wake", "prompt": "{fox} wakes in {den}", "duration": 4, "camera": "push-in",
         "keyframes": [{"at": 4, "prompt": "{fox} steps into the snow"}],
         "transition": {"type": "crossfade", "duration": 0.5}},
        {"id": "storm", "prompt": "{fox} runs home as the storm arrives", "duration": 6, "camera": "pan-left"},
    ],
}


def chat(content) -> dict:
    text = content if isinstance(content, str) else json.dumps(content)
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant",
                                                                                       "content": text}}]}


class ScriptedServer:
    """Replays (status, body, delay, headers) per POST; records every request."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body, headers=None):
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
                    self.wfile.write(data)

            def do_GET(self):
                if self.path.endswith("/models"):
                    self._reply(200, {"object": "list", "data": [{"id": "qwen2.5:14b"}, {"id": "llama3.1:8b"}]})
                else:
                    self._reply(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, reply, delay, headers = server.script.pop(0) if server.script else (500, {}, 0, {})
                time.sleep(delay)
                self._reply(status, reply, headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*script):
        servers.append(ScriptedServer([(s + (0, {}))[:4] for s in script]))  # delay and headers default
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def config(server, **kw) -> LLMConfig:
    return LLMConfig(server.url, "qwen2.5:14b", **({"timeout": 5, "backoff": 0.01} | kw))


def test_a_good_storyboard_in_one_round(serve, monkeypatch):
    monkeypatch.setenv("LONGVID_LLM_API_KEY", "sekret-123")
    server = serve((200, chat(GOOD)))
    plan = plan_with_llm("a fox and a storm", config(server), duration=10, fps=16, width=640, height=352, seed=5)
    spec = plan.storyboard
    assert (plan.rounds, plan.requests, plan.notes) == (1, 1, [])
    assert [s.shot_id for s in spec.shots] == ["wake", "storm"] and spec.duration == 10
    assert (spec.fps, spec.width, spec.height, spec.seed) == (16, 640, 352, 5)
    assert spec.expand(spec.shots[1].prompt).startswith("a small red fox with a white-tipped tail")
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert body["model"] == "qwen2.5:14b"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == json_schema()  # the schema is sent
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    system = body["messages"][0]["content"]
    assert "add up to exactly 10 seconds" in system
    # a cast and places, described so they look the same everywhere, used through {name} in every shot
    assert all(word in system for word in ('"characters"', '"places"', "build", "face", "hair", "clothing", "colours",
                                           "{name}"))
    assert spec.mentions(spec.shots[0]) == ["fox", "den"] and spec.places["den"].description.startswith("a snow")
    assert request["headers"]["Authorization"] == "Bearer sekret-123"
    assert "sekret" not in spec.to_yaml()


def test_invalid_json_is_sent_back_and_fixed(serve):
    server = serve((200, chat("Here is your storyboard: {\"title\": \"oops\", \"shots\": [")), (200, chat(GOOD)))
    plan = plan_with_llm("a fox", config(server), duration=10)
    assert plan.rounds == 2 and plan.requests == 2
    second = server.requests[1]["body"]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"].startswith("Here is your storyboard:")
    assert "not valid JSON" in second[3]["content"]


def test_a_schema_violation_fixed_in_the_second_round(serve):
    bad = json.loads(json.dumps(GOOD))
    bad["shots"][0]["camra"] = "push-in"
    bad["shots"][1]["prompt"] = "{wolf} watches"
    server = serve((200, chat(bad)), (200, chat(GOOD)))
    plan = plan_with_llm("a fox", config(server), duration=10)
    assert plan.rounds == 2
    feedback = server.requests[1]["body"]["messages"][-1]["content"]
    assert "shots[0].camra: unknown key `camra` (did you mean `camera`?)" in feedback
    assert len(server.requests[1]["body"]["messages"]) == len(server.requests[0]["body"]["messages"]) + 2


def test_a_reply_that_never_becomes_valid(serve):
    server = serve(*[(200, chat({"title": "no shots"}))] * 4)
    with pytest.raises(PlanningError, match="no valid storyboard in 4 rounds") as info:
        plan_with_llm("a fox", config(server, repair_rounds=3), duration=10)
    assert "`shots` is required" in str(info.value)
    assert [len(r["body"]["messages"]) for r in server.requests] == [2, 4, 6, 8]  # the history grows


def test_fallback_to_the_rules_planner(serve):
    server = serve(*[(200, chat("no idea"))] * 2)
    plan = plan_with_llm("A fox wakes. Later a storm comes.", config(server, repair_rounds=1), duration=10,
                         fallback="rules")
    assert plan.used_fallback and "used the rule-based planner instead" in plan.notes[0]
    expected = plan_from_prompt("A fox wakes. Later a storm comes.", duration=10)
    assert plan.storyboard.content_hash() == expected.content_hash()


def test_429_then_success_honours_retry_after(serve):
    server = serve((429, {"error": {"message": "slow down"}}, 0, {"Retry-After": "0.2"}), (200, chat(GOOD)))
    waits = []
    plan = plan_with_llm("a fox", config(server), duration=10, sleep=waits.append)
    assert plan.requests == 2 and waits == [0.2]


def test_5xx_retries_with_backoff_then_gives_up(serve):
    server = serve(*[(503, {"error": {"message": "overloaded"}})] * 3)
    waits = []
    with pytest.raises(PlanningError, match="answered 503 3 times: overloaded"):
        plan_with_llm("a fox", config(server, retries=2, backoff=1.0), duration=10, sleep=waits.append)
    assert waits == [1.0, 2.0]


def test_a_timeout_is_retried(serve):
    server = serve((200, chat(GOOD), 1.5), (200, chat(GOOD)))
    plan = plan_with_llm("a fox", config(server, timeout=0.3), duration=10)
    assert plan.requests == 2 and len(server.requests) == 2


def test_a_server_that_never_answers_in_time(serve):
    server = serve(*[(200, chat(GOOD), 1.0)] * 2)
    with pytest.raises(PlanningError, match=r"did not answer within 0.3 s, 2 times; raise --llm-timeout"):
        plan_with_llm("a fox", config(server, timeout=0.3, retries=1), duration=10)


def test_an_unknown_model_names_the_ones_the_server_has(serve):
    server = serve((404, {"error": {"message": "model 'qwen3:999b' not found"}}))
    with pytest.raises(UserError) as info:
        plan_with_llm("a fox", LLMConfig(server.url, "qwen3:999b", timeout=5), duration=10)
    assert str(info.value) == (f"the LLM server at {server.url} does not know model 'qwen3:999b' "
                               "(404: model 'qwen3:999b' not found); it has: llama3.1:8b, qwen2.5:14b")


def test_an_unreachable_server(serve):
    server = serve()
    url = server.url
    server.close()
    with pytest.raises(UserError, match=r"cannot reach the LLM server at .*; is it running\? e.g. `ollama serve`"):
        plan_with_llm("a fox", LLMConfig(url, "m", timeout=2), duration=10)


def test_servers_without_response_format_get_the_schema_by_instruction(serve):
    server = serve((400, {"error": {"message": "response_format json_schema is not supported"}}),
                   (200, chat("Sure!\n```json\n" + json.dumps(GOOD) + "\n```")))
    plan = plan_with_llm("a fox", config(server), duration=10)
    assert "asked for JSON by instruction" in plan.notes[0]
    retry = server.requests[1]["body"]
    assert "response_format" not in retry
    assert '"$defs"' in retry["messages"][0]["content"], "the schema travels in the system prompt"


def test_durations_slightly_off_are_fixed_and_far_off_go_back(serve):
    near = json.loads(json.dumps(GOOD))
    near["shots"][1]["duration"] = 5.5  # 9.5 s instead of 10
    far = json.loads(json.dumps(GOOD))
    far["shots"][1]["duration"] = 1  # 5 s
    server = serve((200, chat(far)), (200, chat(near)))
    plan = plan_with_llm("a fox", config(server), duration=10)
    assert plan.storyboard.duration == pytest.approx(10, abs=1e-9)
    assert plan.storyboard.total_frames == 240
    assert plan.notes == ["the model's durations added up to 9.5 s; scaled them to 10 s"]
    assert "add up to 5 s; they must add up to exactly 10 s" in server.requests[1]["body"]["messages"][-1]["content"]


def test_extract_json_from_prose_and_fences():
    assert extract_json('Sure. {"a": {"b": "}"}} Enjoy!') == {"a": {"b": "}"}}
    assert extract_json("```json\n{\"a\": 1}\n```") == {"a": 1}
    with pytest.raises(ValueError, match="not valid JSON"):
        extract_json("{'a': 1}")


def test_cli_plans_with_an_llm_and_keeps_the_key_secret(serve, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sekret-456")
    server = serve((200, chat(GOOD)))
    out = tmp_path / "story.yaml"
    result = run_cli("plan", "a fox and a storm", "--planner", "llm", "--llm-base-url", server.url, "--llm-model",
                     "qwen2.5:14b", "--llm-api-key-env", "MY_KEY", "--duration", "10", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sekret-456"
    text = out.read_text()
    assert "sekret" not in text + result.stdout + result.stderr
    assert text.startswith("# planned by longvid") and "llm qwen2.5:14b (1 round(s))" in text
    assert run_cli("validate", str(out)).returncode == 0


def test_cli_exit_codes_for_llm_failures(serve, tmp_path):
    missing = run_cli("plan", "a fox", "--planner", "llm")
    assert missing.returncode == 2 and "--planner llm needs --llm-base-url and --llm-model" in missing.stderr
    server = serve((404, {"error": {"message": "no such model"}}))
    unknown = run_cli("plan", "a fox", "--planner", "llm", "--llm-base-url", server.url, "--llm-model", "nope")
    assert unknown.returncode == 2 and "does not know model 'nope'" in unknown.stderr
    never = serve(*[(200, chat("nothing useful"))] * 2)
    failed = run_cli("plan", "a fox", "--planner", "llm", "--llm-base-url", never.url, "--llm-model", "m",
                     "--repair-rounds", "1", "-o", str(tmp_path / "x.yaml"))
    assert failed.returncode == 1 and "no valid storyboard in 2 rounds" in failed.stderr
    assert not (tmp_path / "x.yaml").exists()
    rescued = serve(*[(200, chat("nothing useful"))] * 2)
    fallback = run_cli("plan", "A fox wakes. Later a storm.", "--planner", "llm", "--llm-base-url", rescued.url,
                       "--llm-model", "m", "--repair-rounds", "1", "--fallback", "rules", "-o", str(tmp_path / "y.yaml"))
    assert fallback.returncode == 0 and "warning: the LLM planner failed" in fallback.stderr
    assert "(rules (fallback))" in (tmp_path / "y.yaml").read_text()


@pytest.mark.parametrize("prompt, duration, message", [
    ("   ", 30, "the prompt is empty"),
    ("a fox in the snow", 0, "`duration` (0) must be positive"),
    ("a fox in the snow", 0.1, "`duration` (0.1) is too short to plan"),
])
def test_both_planners_refuse_the_same_bad_input_with_the_same_error(prompt, duration, message):
    from longvid.planners.rules import plan_from_prompt

    with pytest.raises(UserError) as rules:
        plan_from_prompt(prompt, duration=duration)
    # the LLM planner refuses before it asks anything: the server address is never used
    with pytest.raises(UserError) as llm:
        plan_with_llm(prompt, LLMConfig("http://127.0.0.1:9/v1", "any"), duration=duration)
    assert type(rules.value) is type(llm.value) and str(rules.value) == str(llm.value)
    assert str(rules.value).startswith(message)
