"""A real studio server on 127.0.0.1 (uvicorn in a thread) over a small storyboard with comments, and raw HTTP."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import requires

needs_studio = requires("starlette", "studio")

# Comments in odd places, a quoted prompt, a flow mapping wrapped over two lines: an edit must keep them all.
STORY = """\
# A small storyboard for the studio's tests.
title: Studio test
fps: 12
width: 160
height: 96
seed: 11
characters:
  fox: a red fox with a white-tipped tail   # the one character
shots:
  - id: wake
    prompt: "{fox} wakes in the snow"
    duration: 2
    camera: push-in
    transition: {type: crossfade,
                 duration: 0.5}
  # the hunt is the long shot
  - id: hunt
    prompt: "{fox} hunts under the snow"
    duration: 3.5
    camera: pan-left
    keyframes:
      - at: 3.5
        prompt: "{fox} leaps"   # the leap
  - id: night
    prompt: the forest at night
    duration: 1.5
"""


@dataclass
class Project:
    folder: Path
    storyboard: Path
    output: Path
    cache: Path


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    folder = tmp_path / "project"
    folder.mkdir()
    storyboard = folder / "story.yaml"
    storyboard.write_text(STORY, encoding="utf-8")
    return Project(folder, storyboard, folder / "story.mp4", tmp_path / "cache")


@pytest.fixture
def server(project: Project):
    """The studio, serving `project` from a thread; stopped after the test."""
    from longvid.studio import RenderOptions, start

    studio = start(project.storyboard, RenderOptions(output=project.output, cache_dir=project.cache,
                                                     preset="ultrafast"), port=0, background=True)
    yield studio
    studio.stop()


def render(server, timeout: float = 120) -> dict:
    """Start a render through the API and wait for it; the page's state after it."""
    assert request(server, "POST", "/api/render").status == 202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = request(server, "GET", "/api/state").json()
        if state["render"]["state"] != "running":
            assert state["render"]["state"] == "succeeded", state["render"]["error"]
            return state
        time.sleep(0.2)
    raise AssertionError("the render did not finish")


def request(server, method: str, target: str, *, token: bool | str = True, body=None,
            headers: dict | None = None, origin: bool = True, stream: bool = False) -> Reply:
    """One request, sent exactly as written (http.client does not normalise `..` or encodings); with `stream`, the
    status and headers only (an event stream never ends)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    head = {"Host": f"127.0.0.1:{server.port}"}
    if token:
        head["X-Longvid-Token"] = server.token if token is True else token
    if origin and method != "GET":
        head["Origin"] = f"http://127.0.0.1:{server.port}"
    if body is not None:
        body = json.dumps(body).encode()
        head["Content-Type"] = "application/json"
        head["Content-Length"] = str(len(body))
    head |= headers or {}
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for k, v in head.items():
        conn.putheader(k, v)
    conn.endheaders(body)
    response = conn.getresponse()
    reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, b"" if stream else response.read())
    conn.close()
    return reply
