"""The studio's doors: the token, the Host and Origin checks, and files only from the project (real server)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from tests.conftest import ROOT
from tests.studio.conftest import needs_studio, render, request

pytestmark = needs_studio

PAGES = ["/", "/api/state", "/api/events", "/video", "/static/studio.js", "/thumb/" + "a" * 64, "/artifact/" + "a" * 64]


def test_without_the_token_every_request_is_refused(server, project):
    before = project.storyboard.read_bytes()
    for path in PAGES:
        assert request(server, "GET", path, token=False).status == 401, path
        assert request(server, "GET", path, token="not-the-token").status == 401, path
    for path in ["/api/render", "/api/shots/wake", "/api/takes"]:
        reply = request(server, "POST", path, token=False, body={"changes": {"prompt": "x"}})
        assert reply.status == 401, path
    assert b"token" in request(server, "GET", "/", token=False).body
    assert project.storyboard.read_bytes() == before
    assert not project.output.exists()


def test_the_first_page_load_sets_a_cookie_that_later_requests_carry(server):
    page = request(server, "GET", f"/?token={server.token}", token=False)
    assert page.status == 200 and b"studio.js" in page.body
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    pair = cookie.split(";")[0]
    assert request(server, "GET", "/api/state", token=False, headers={"Cookie": pair}).status == 200
    name = pair.split("=")[0]
    assert name.startswith("longvid_studio_")  # one name per studio: cookies ignore ports
    assert request(server, "GET", "/api/state", token=False, headers={"Cookie": f"{name}=wrong"}).status == 401


def test_changes_need_the_same_origin(server, project):
    before = project.storyboard.read_bytes()
    version = request(server, "GET", "/api/state").json()["version"]
    edit = {"changes": {"prompt": "changed"}, "version": version}
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Origin": f"http://localhost:{server.port + 1}"}, {"Sec-Fetch-Site": "cross-site"}, {}):
        reply = request(server, "POST", "/api/shots/wake", body=edit, headers=headers, origin=False)
        assert reply.status == 403, headers
    assert project.storyboard.read_bytes() == before
    assert request(server, "POST", "/api/shots/wake", body=edit, origin=False,
                   headers={"Sec-Fetch-Site": "same-origin"}).status == 200
    assert 'prompt: "changed"' in project.storyboard.read_text()  # the quoting is kept


def test_another_host_name_is_refused(server):
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends `Host: evil.example`."""
    reply = request(server, "GET", "/api/state", headers={"Host": f"evil.example:{server.port}"})
    assert reply.status == 403
    assert request(server, "GET", "/api/state", headers={"Host": f"localhost:{server.port}"}).status == 200


def test_traversal_never_returns_a_file_outside_the_project(server, project, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    state = render(server)
    key = state["shots"][0]["pictures"][0]["thumb"]
    assert request(server, "GET", f"/artifact/{key}").status == 200  # a real artifact is served
    attempts = [
        "/artifact/..%2f..%2f..%2fsecret.txt", "/artifact/%2e%2e%2f%2e%2e%2fsecret.txt", "/artifact/../secret.txt",
        "/thumb/..%2fsecret.txt", "/artifact/" + str(secret).replace("/", "%2f"), "/artifact//etc/passwd",
        "/static/..%2fapp.py", "/static/../__init__.py", "/static/%2e%2e/edits.py", "/video/../story.yaml",
        "/video%2f..%2fstory.yaml", "/story.yaml", "/objects", f"/artifact/{key}/..%2f..%2f..%2f..%2fsecret.txt",
        "/artifact/" + "0" * 64,  # well formed, not a key of this project
    ]
    for target in attempts:
        reply = request(server, "GET", target)
        assert reply.status == 404, target
        assert b"TOP SECRET" not in reply.body and b"root:" not in reply.body and b"shots:" not in reply.body

    # a symlink in the cache that points out of it: the artifact of a key the page shows, and a whole entry
    other = next(p["thumb"] for shot in state["shots"] for p in shot["pictures"] if p["thumb"] != key)
    assert request(server, "GET", f"/artifact/{other}").status == 200
    folder = project.cache / "objects" / other[:2] / other
    artifact = next(f for f in folder.iterdir() if f.suffix == ".png")
    artifact.unlink()
    artifact.symlink_to(secret)
    outside = tmp_path / "outside"
    (project.cache / "objects" / key[:2] / key).rename(outside)
    (project.cache / "objects" / key[:2] / key).symlink_to(outside, target_is_directory=True)
    for target in (f"/artifact/{other}", f"/thumb/{other}", f"/artifact/{key}"):
        reply = request(server, "GET", target)
        assert reply.status == 404, target
        assert b"TOP SECRET" not in reply.body


def test_listens_on_127_0_0_1_only_by_default(server):
    assert server.host == "127.0.0.1"
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")
    assert server._socket.getsockname()[0] == "127.0.0.1"
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no address but 127.0.0.1 to try")
    with pytest.raises(OSError), socket.create_connection((address, server.port), timeout=3):
        pass


def test_the_command_prints_the_local_address_and_warns_for_another_host(project):
    for host, warned in (("127.0.0.1", False), ("0.0.0.0", True)):
        proc = subprocess.Popen([sys.executable, "-m", "longvid", "studio", str(project.storyboard), "--no-browser",
                                 "--port", "0", "--host", host, "--cache", str(project.cache)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            line = proc.stdout.readline()
            shown = "0.0.0.0" if warned else "127.0.0.1"
            url = re.search(rf"http://{re.escape(shown)}:(\d+)/\?token=([\w-]{{20,}})", line)
            assert url, line
            # the address it printed serves (and only then is Ctrl-C sent: a process started with SIGINT
            # ignored, as a background job is, hears it only once uvicorn listens for it)
            server = SimpleNamespace(port=int(url.group(1)), token=url.group(2))
            deadline = time.monotonic() + 30
            while _status(server, {"Host": f"{shown}:{server.port}"}) != 200:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        assert ("warning: the studio listens on 0.0.0.0" in err) is warned, err


def _status(server, headers: dict) -> int | None:
    try:
        return request(server, "GET", "/api/state", headers=headers).status
    except OSError:
        return None


def test_a_bad_storyboard_or_port_exits_2(project, tmp_path):
    missing = subprocess.run([sys.executable, "-m", "longvid", "studio", str(tmp_path / "none.yaml"), "--no-browser"],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert missing.returncode == 2 and "not found" in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([sys.executable, "-m", "longvid", "studio", str(project.storyboard), "--no-browser",
                               "--port", str(port)], capture_output=True, text=True, cwd=ROOT, timeout=60,
                              env=os.environ | {"PYTHONUNBUFFERED": "1"})
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr


def _own_address() -> str | None:
    """An address of this machine other than loopback (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_malformed_requests_get_a_clear_400_and_change_nothing(server, project):
    before = project.storyboard.read_bytes()
    version = request(server, "GET", "/api/state").json()["version"]
    for path, body in (("/api/shots/wake", {"changes": "prompt", "version": version}),
                       ("/api/shots/wake", {"changes": {"prompt": "x"}}),
                       ("/api/shots/wake", ["not", "an", "object"]),
                       ("/api/takes", {"task": "encode:wake:0", "version": version}),
                       ("/api/takes", {"task": "chunk:wake:0", "take": True, "version": version}),
                       ("/api/takes", {"task": "chunk:wake:0", "take": -1, "version": version}),
                       ("/api/takes", {"task": "chunk:nope:0", "version": version})):
        reply = request(server, "POST", path, body=body)
        assert reply.status == 400, (path, body, reply.body)
        assert reply.json()["errors"][0]
    assert project.storyboard.read_bytes() == before
    events = request(server, "GET", "/api/events?from=nonsense", headers={"Last-Event-ID": "x"}, stream=True)
    assert events.status == 200
