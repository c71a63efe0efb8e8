"""Edits through the studio's API: written back with comments and formatting kept, validated as the CLI would,
never over another editor's change; and renders one at a time."""

from __future__ import annotations

import difflib
import http.client
import json
import shutil
import time

from tests.conftest import ROOT, run_cli
from tests.studio.conftest import STORY, needs_studio, request

pytestmark = needs_studio


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]


def edit(server, shot: str, changes: dict, version: str | None = None):
    version = version or request(server, "GET", "/api/state").json()["version"]
    return request(server, "POST", f"/api/shots/{shot}", body={"changes": changes, "version": version})


def test_an_edit_changes_only_its_lines_and_keeps_every_comment(server, project):
    reply = edit(server, "hunt", {"prompt": "{fox} dives into the snow", "duration": "4", "camera": "static"})
    assert reply.status == 200, reply.body
    after = project.storyboard.read_text()
    assert sorted(changed_lines(STORY, after)) == sorted([
        '-     prompt: "{fox} hunts under the snow"', '-     duration: 3.5', '-     camera: pan-left',
        '+     prompt: "{fox} dives into the snow"', '+     duration: 4', '+     camera: static'])
    assert reply.json()["version"] == request(server, "GET", "/api/state").json()["version"]
    # the CLI reads the result as the page does
    assert run_cli("validate", str(project.storyboard)).returncode == 0


def test_keyframes_and_transitions_are_edited_in_place(server, project):
    assert edit(server, "hunt", {"keyframes": [{"at": 3.5, "prompt": "{fox} lands"}, {"at": 1, "prompt": "{fox} "
                                                                                      "listens"}]}).status == 200
    assert edit(server, "wake", {"transition": "cut"}).status == 200
    after = project.storyboard.read_text()
    assert '        prompt: "{fox} lands"   # the leap' in after  # the keyframe's comment stays with it
    assert "      - at: 1\n        prompt: '{fox} listens'" in after or \
        '      - at: 1\n        prompt: "{fox} listens"' in after
    assert "    transition: cut\n" in after and "duration: 0.5" not in after
    assert "# the hunt is the long shot" in after and "# the one character" in after
    state = request(server, "GET", "/api/state").json()
    hunt = next(s for s in state["shots"] if s["id"] == "hunt")
    assert [k["at"] for k in hunt["keyframes"]] == [3.5, 1.0]
    assert [p["timecode"] for p in hunt["pictures"]] == ["00:00:01:06", "00:00:02:06", "00:00:05:06"] or \
        len(hunt["pictures"]) == 3


def test_an_invalid_edit_shows_the_clis_message_and_leaves_the_file(server, project):
    before = project.storyboard.read_bytes()
    for changes, message in (({"duration": "-2"}, "`duration` should be greater than 0"),
                             ({"duration": "soon"}, "`duration` should be a valid number"),
                             ({"camera": "dolly"}, "`camera` must be one of"),
                             ({"transition": {"type": "crossfade"}}, "a crossfade needs a `duration`")):
        reply = edit(server, "hunt", changes)
        assert reply.status == 422, changes
        (error,) = reply.json()["errors"]
        assert error.startswith(f"{project.storyboard}:") and message in error, error
        line, col = map(int, error.split(":")[1:3])
        assert line > 15 and col > 0  # inside the shot `hunt`, as `longvid validate` would point
    assert project.storyboard.read_bytes() == before
    assert edit(server, "nope", {"prompt": "x"}).status == 400
    assert edit(server, "hunt", {"seed": 3}).status == 400  # not something the page edits
    assert project.storyboard.read_bytes() == before


def test_a_change_made_elsewhere_is_picked_up_and_never_overwritten(server, project):
    old = request(server, "GET", "/api/state").json()["version"]
    events = _events(server, old)
    project.storyboard.write_text(STORY.replace("the forest at night", "the forest at dawn"))  # another editor
    assert _next_event(events, "storyboard")["version"] != old
    reply = edit(server, "night", {"prompt": "the page's prompt"}, version=old)
    assert reply.status == 409 and reply.json()["conflict"]
    assert "the forest at dawn" in project.storyboard.read_text()
    state = request(server, "GET", "/api/state").json()
    assert next(s for s in state["shots"] if s["id"] == "night")["prompt"] == "the forest at dawn"
    # edited elsewhere into something invalid: the page shows the problems, and edits wait for a fix
    project.storyboard.write_text(STORY.replace("duration: 1.5", "duration: -1"))
    state = request(server, "GET", "/api/state").json()
    assert state["problems"] and "`duration` should be greater than 0" in state["problems"][0]
    assert request(server, "POST", "/api/render").status == 422


def test_one_render_at_a_time(server, project):
    assert request(server, "POST", "/api/render").status == 202
    second = request(server, "POST", "/api/render")
    assert second.status == 409 and "one render at a time" in second.json()["errors"][0]
    while request(server, "GET", "/api/state").json()["render"]["state"] == "running":
        time.sleep(0.2)
    state = request(server, "GET", "/api/state").json()
    assert state["render"]["state"] == "succeeded" and state["stale"] == 0
    assert project.output.is_file()
    video = request(server, "GET", "/video")
    assert video.status == 200 and video.body == project.output.read_bytes()
    ranged = request(server, "GET", "/video", headers={"Range": "bytes=0-99"})
    assert ranged.status == 206 and ranged.body == project.output.read_bytes()[:100]


def _events(server, version: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", f"/api/events?version={version}", headers={"X-Longvid-Token": server.token})
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("content-type").startswith("text/event-stream")
    return response


def _next_event(response, name: str) -> dict:
    deadline = time.monotonic() + 10
    kind = None
    while time.monotonic() < deadline:
        line = response.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind == name:
            return json.loads(line.removeprefix("data: "))
    raise AssertionError(f"no {name!r} event")


# ---------------------------------------------------------------------------------------------- the file alone


def test_every_other_line_is_kept_byte_for_byte_whatever_the_files_style(tmp_path):
    from longvid.studio.edits import StoryboardFile

    styles = {
        "unindented lists, no ids": "fps: 24\nwidth: 64\nheight: 64\ncontinuity: {strategy: overlap-blend,\n"
                                    "             overlap: 4}\nshots:\n- prompt: one\n  duration: 1\n"
                                    "- prompt: two   # second\n  duration: 1\n  keyframes:\n  - at: 0.5\n"
                                    "    prompt: half\n",
        "flow-style shots": "fps: 24\nwidth: 64\nheight: 64\nshots:\n  - {id: a, prompt: one, duration: 1}  # a\n"
                            "  - {id: b, prompt: 'two', duration: 1}\n  - {id: c, prompt: three, duration: 1}\n",
        "four spaces": "fps: 24\nwidth: 64\nheight: 64\nshots:\n    -   id: a\n        prompt: one\n"
                       "        duration: 1\n    -   id: b\n        prompt: two\n        duration: 1\n",
    }
    for name, text in styles.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        file = StoryboardFile(path)
        second = file.spec().shots[1].shot_id
        file.edit_shot(second, {"prompt": "CHANGED", "duration": 2}, file.read()[1])
        file.set_take(f"chunk:{second}:0", 1, file.read()[1])
        after = path.read_text()
        spec = file.spec()
        assert (spec.shots[1].prompt, spec.shots[1].duration, spec.shots[1].reroll) == ("CHANGED", 2, {"chunk:0": 1})
        assert [s.prompt for s in spec.shots] == ["one", "CHANGED"] + (["three"] if name == "flow-style shots" else [])
        removed = [line for line in difflib.ndiff(text.splitlines(), after.splitlines()) if line[:1] == "-"]
        assert all("two" in line or "duration: 1" in line for line in removed), (name, removed)
        kept = [line for line in text.splitlines() if "two" not in line and "duration" not in line]
        assert all(line in after.splitlines() for line in kept), (name, after)


def test_a_json_storyboard_stays_json(tmp_path):
    from longvid.studio.edits import StoryboardFile

    path = tmp_path / "story.json"
    path.write_text(json.dumps({"fps": 24, "width": 64, "height": 64,
                                "shots": [{"id": "a", "prompt": "one", "duration": 1}]}))
    file = StoryboardFile(path)
    file.edit_shot("a", {"prompt": "two"}, file.read()[1])
    file.set_take("keyframe:a:0", 3, file.read()[1])
    assert json.loads(path.read_text())["shots"][0] == {"id": "a", "prompt": "two", "duration": 1,
                                                        "reroll": {"keyframe:0": 3}}


def test_editing_each_example_changes_only_the_edited_shots_lines(tmp_path):
    from longvid.studio.edits import StoryboardFile

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for path in sorted((tmp_path / "examples").rglob("*.yaml")):
        text = path.read_text()
        file = StoryboardFile(path)
        shots = file.spec().shots
        edited = shots[len(shots) // 2]
        file.edit_shot(edited.shot_id, {"prompt": f"{edited.prompt}, at night"}, file.read()[1])
        after = path.read_text()
        changed = [line for line in difflib.ndiff(text.splitlines(), after.splitlines()) if line[:1] in "+-"]
        assert len(changed) == 2 and all("at night" in line or edited.prompt.split("{")[0] in line
                                         for line in changed), (path.name, changed)
        assert file.spec().shots[len(shots) // 2].prompt == f"{edited.prompt}, at night"


def test_the_command_renders_with_its_options_in_worker_processes(project):
    """`longvid studio` passes -o, --cache, --workers, --crf and --preset to the renders the page starts."""
    import re
    import signal
    import subprocess
    import sys
    from types import SimpleNamespace

    output = project.folder / "out" / "film.mp4"
    output.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "longvid", "studio", str(project.storyboard), "--no-browser",
                             "--port", "0", "-o", str(output), "--cache", str(project.cache), "--workers", "2",
                             "--crf", "30", "--preset", "ultrafast"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", proc.stdout.readline())
        server = SimpleNamespace(port=int(url.group(1)), token=url.group(2))
        assert request(server, "POST", "/api/render").status == 202
        deadline = time.monotonic() + 120
        while (state := request(server, "GET", "/api/state").json())["render"]["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert state["render"]["state"] == "succeeded", state["render"]["error"]
    manifest = json.loads(output.with_suffix(".manifest.json").read_text())
    assert (manifest["video"]["crf"], manifest["video"]["preset"]) == (30, "ultrafast")
    assert manifest["execution"]["devices"] == ["cpu", "cpu"]
    assert list((project.cache / "objects").iterdir())
    assert run_cli("status", str(project.storyboard), "--cache", str(project.cache), "--crf", "30",
                   "--preset", "ultrafast").stdout.splitlines()[-1].startswith(f"{len(state['tasks'])} fresh")


def test_the_studio_shows_the_file_the_last_render_wrote(project):
    """Rendered to a file of another name and folder, the storyboard's video is found from the cache's history."""
    import re
    import signal
    import subprocess
    import sys
    from types import SimpleNamespace

    output = project.folder / "renders" / "lighthouse-take2.mp4"
    output.parent.mkdir()
    done = run_cli("render", str(project.storyboard), "-o", str(output), "--cache", str(project.cache),
                   "--preset", "ultrafast")
    assert done.returncode == 0, done.stderr
    # no --preset: the studio takes the shown video's encoding settings from its manifest (they key its segments)
    proc = subprocess.Popen([sys.executable, "-m", "longvid", "studio", str(project.storyboard), "--no-browser",
                             "--port", "0", "--cache", str(project.cache)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", proc.stdout.readline())
        which = proc.stdout.readline()
        server = SimpleNamespace(port=int(url.group(1)), token=url.group(2))
        state = request(server, "GET", "/api/state").json()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert which.strip() == f"showing {output}: the last render of {project.storyboard} (-o chooses another file)"
    assert state["video"]["exists"] and state["video"]["path"] == str(output.resolve())
    assert {t["state"] for t in state["tasks"]} == {"fresh"}  # the render it shows, not every task to do again
    # the file gone, the studio says where a render from the page would write instead
    output.unlink()
    from longvid.rendering import last_output

    assert last_output(project.storyboard, project.cache) is None
