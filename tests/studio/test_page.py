"""The studio page in a real headless Chromium (Debian's, through its chromedriver), against a real server.

Screenshots go to $LONGVID_SCREENSHOTS when it is set (docs/images, for docs/studio.md), else the test's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from longvid.planners.compile import Output
from longvid.rendering import prepare
from longvid.storyboard import load_storyboard
from tests.studio.conftest import STORY, needs_studio, render, request

CHROMIUM = os.environ.get("LONGVID_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("LONGVID_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    needs_studio,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Chromium and its driver (Debian: apt-get install chromium chromium-driver)"),
]


@pytest.fixture(scope="module")
def chromium():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install 'longvid[test]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1200",
                "--autoplay-policy=no-user-gesture-required", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def page(chromium, server):
    """The page, opened from the address the server printed (its token sets the cookie)."""
    chromium.get(server.url)
    wait(chromium, lambda: chromium.execute_script("return !!(window.studio && window.studio.state)"))
    yield chromium
    chromium.get("about:blank")


def wait(driver, condition, timeout: float = 60, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


def screenshot(driver, name: str, tmp_path: Path, at: str | None = None) -> None:
    """Save the page, from its top or with `at` (a selector) at the top of the window."""
    folder = Path(os.environ.get("LONGVID_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    driver.execute_script("const n = arguments[0] && document.querySelector(arguments[0]);"
                          "if (n) n.scrollIntoView(true); else window.scrollTo(0, 0)", at)
    driver.save_screenshot(str(folder / f"{name}.png"))


def css(driver, selector: str):
    return driver.find_elements("css selector", selector)


def attrs(driver, selector: str, name: str) -> list[str]:
    """An attribute of everything `selector` finds, read in one step (the page redraws as events arrive)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((n) => n.getAttribute(arguments[1]))", selector, name)


def task_state(driver, task: str) -> str | None:
    return driver.execute_script(
        "const r = document.querySelector(`tr.task[data-task='${arguments[0]}'] .state`); return r && r.textContent",
        task)


def click(driver, selector: str) -> None:
    """Click what `selector` finds when it is there (in one step: the page redraws its lists as events arrive)."""
    wait(driver, lambda: driver.execute_script(
        "const n = document.querySelector(arguments[0]); if (n) n.click(); return !!n", selector), 30)


def reasons_of(driver, task: str) -> str:
    return driver.execute_script(
        "return document.querySelector(`tr.task[data-task='${arguments[0]}'] .reasons`).textContent", task)


def select_shot(driver, shot: str) -> None:
    click(driver, f".shot[data-shot='{shot}']")
    wait(driver, lambda: driver.find_element("id", "shot-id").text == shot)


def render_from_page(driver, server) -> dict:
    """Press "Render stale" and wait until the page shows that render ended."""
    number = (request(server, "GET", "/api/state").json()["render"] or {"number": 0})["number"] + 1
    driver.find_element("id", "render").click()
    wait(driver, lambda: driver.execute_script(
        "const r = window.studio.state.render; return r && r.number === arguments[0] && r.state !== 'running'"
        " && window.studio.seen.some((e) => e.type === 'job' && e.job === arguments[0])", number), 120)
    state = request(server, "GET", "/api/state").json()
    assert state["render"]["state"] == "succeeded", state["render"]["error"]
    return state


def started(driver, job: int) -> set[str]:
    """The tasks the page saw start in render `job`, from its event stream."""
    seen = driver.execute_script("return window.studio.seen")
    return {e["task"] for e in seen if e.get("job") == job and e["type"] == "started"}


def test_the_page_lists_every_shot_with_its_thumbnail(page, server, project, tmp_path):
    render(server)
    page.refresh()
    wait(page, lambda: len(css(page, ".shot img.thumb")) == 4)  # wake, hunt (two keyframes), night
    assert attrs(page, "#timeline .shot", "data-shot") == ["wake", "hunt", "night"]
    wait(page, lambda: page.execute_script(
        "const all = [...document.querySelectorAll('.shot img.thumb, #cast img')];"
        "return all.length === 5 && all.every((i) => i.complete && i.naturalWidth > 0)"))
    # shots are drawn to scale: 24, 42 and 18 frames of 84
    widths = page.execute_script(
        "return [...document.querySelectorAll('#timeline .shot')].map((n) => n.getBoundingClientRect().width)")
    assert abs(widths[1] / widths[0] - 42 / 24) < 0.1 and abs(widths[2] / widths[0] - 18 / 24) < 0.1
    assert attrs(page, "#cast .ref", "data-ref") == ["fox"]  # the cast's reference
    # a click on a shot seeks the video to it
    wait(page, lambda: page.execute_script("return document.getElementById('video').readyState") >= 1)
    select_shot(page, "hunt")
    wait(page, lambda: abs(page.execute_script("return document.getElementById('video').currentTime") - 2.0) < 0.05)
    assert page.find_element("id", "shot-frames").text.startswith("frames 24-65")
    facts = page.find_element("id", "facts").text
    assert "models: keyframes preview, video preview" in facts
    hunt = next(s for s in json.loads(project.output.with_suffix(".manifest.json").read_text())["shots"]
                if s["id"] == "hunt")
    assert f"chunk:hunt:1: seed {hunt['chunks'][1]['seed']}" in facts  # the manifest's seeds, all 63 bits
    screenshot(page, "studio-overview", tmp_path)


def test_flagged_seams_are_marked_on_the_timeline(page, server, project, tmp_path):
    render(server)
    manifest_path = project.output.with_suffix(".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    seams = [s for s in manifest["qa"]["seams"] if s["score"] is not None]
    assert seams
    manifest["qa"]["threshold"] = min(s["score"] for s in seams) - 0.01  # a strict threshold flags every seam
    manifest_path.write_text(json.dumps(manifest))
    page.refresh()
    wait(page, lambda: len(css(page, "#timeline .seam")) == len(seams))
    markers = set(attrs(page, "#timeline .seam", "data-seam"))
    assert markers == {f"{s['shot']}:{s['chunk']}" for s in seams}


def test_editing_a_prompt_updates_the_yaml_and_shows_the_shot_stale(page, server, project, tmp_path):
    render(server)
    page.refresh()
    wait(page, lambda: task_state(page, "keyframe:wake:0") == "fresh")
    select_shot(page, "hunt")
    assert task_state(page, "keyframe:hunt:0") == "fresh"
    prompt = page.find_element("id", "prompt")
    prompt.clear()
    prompt.send_keys("{fox} digs a tunnel under the snow")
    page.find_element("id", "save").click()
    wait(page, lambda: "digs a tunnel" in project.storyboard.read_text())
    text = project.storyboard.read_text()
    for line in STORY.splitlines():  # every other line, comments included, is as it was
        if "hunts under the snow" not in line:
            assert line in text.splitlines()
    wait(page, lambda: task_state(page, "keyframe:hunt:0") == "stale")
    reasons = reasons_of(page, "keyframe:hunt:0")
    assert "param_changed: prompt" in reasons
    assert task_state(page, "chunk:hunt:1") == "stale"
    select_shot(page, "wake")
    assert task_state(page, "keyframe:wake:0") == "fresh"  # the other shots are untouched
    assert css(page, ".shot[data-shot='hunt'][data-state=stale]")
    select_shot(page, "hunt")
    screenshot(page, "studio-edit", tmp_path, at="#shot")


def test_an_invalid_duration_shows_the_error_and_leaves_the_file(page, server, project, tmp_path):
    before = project.storyboard.read_bytes()
    select_shot(page, "hunt")
    duration = page.find_element("id", "duration")
    duration.clear()
    duration.send_keys("-2")
    page.find_element("id", "save").click()
    errors = page.find_element("id", "errors")
    wait(page, errors.is_displayed)
    assert errors.text.startswith(f"{project.storyboard}:")
    assert "`duration` should be greater than 0" in errors.text
    line = int(errors.text.split(":")[1])
    assert STORY.splitlines()[line - 1].strip() == "duration: 3.5"  # pointed where the CLI would point
    assert project.storyboard.read_bytes() == before
    screenshot(page, "studio-invalid", tmp_path)


def test_a_reroll_of_one_chunk_re_renders_only_that_chunk_and_the_stitch(page, server, project, tmp_path):
    first = render(server)
    page.refresh()
    select_shot(page, "hunt")
    wait(page, lambda: task_state(page, "chunk:hunt:1") == "fresh")
    seed = next(t["seed"] for t in first["tasks"] if t["id"] == "chunk:hunt:1")
    click(page, "button.take-next[data-task='chunk:hunt:1']")
    wait(page, lambda: "reroll: {chunk:1: 1}" in project.storyboard.read_text())
    wait(page, lambda: task_state(page, "chunk:hunt:1") == "stale")
    reasons = reasons_of(page, "chunk:hunt:1")
    assert "seed_changed: take 0 -> 1" in reasons
    screenshot(page, "studio-takes", tmp_path, at="#edit")
    # what depends on the chunk, from the plan itself: the segments that read it, and the join; the preview's
    # chunks are not stored, so those segments draw their other chunks again too
    plan, _ = prepare(load_storyboard(project.storyboard), Output())
    readers = set(plan.graph.consumers("chunk:hunt:1"))
    assert readers and all(t.startswith("encode:") for t in readers)
    redrawn = {d for r in readers for d in plan.graph[r].deps if d.startswith("chunk:")}
    stale = {t["id"] for t in request(server, "GET", "/api/state").json()["tasks"] if t["state"] != "fresh"}
    assert stale == readers | redrawn | {"concat"}
    assert not any(t.startswith("keyframe:") for t in stale)
    state = render_from_page(page, server)
    assert started(page, 2) == readers | {"concat"}
    manifest = json.loads(project.output.with_suffix(".manifest.json").read_text())
    hunt = next(s for s in manifest["shots"] if s["id"] == "hunt")
    chunk = next(c for c in hunt["chunks"] if c["task"] == "chunk:hunt:1")
    assert chunk["take"] == 1 and str(chunk["seed"]) != seed and hunt["reroll"] == {"chunk:1": 1}
    assert all(k["cached"] for s in manifest["shots"] for k in s["keyframes"])
    assert state["stale"] == 0

    # back to the first take: everything is in the cache, only the join runs
    click(page, "button.take-back[data-task='chunk:hunt:1']")
    wait(page, lambda: "reroll" not in project.storyboard.read_text())
    assert project.storyboard.read_text() == STORY
    render_from_page(page, server)
    assert started(page, 3) == {"concat"}


def test_progress_events_appear_while_a_render_runs(page, server, project, tmp_path):
    prompt = page.find_element("id", "prompt")
    prompt.send_keys(" (typed, not saved)")  # the redraws a render brings must not wipe it
    page.find_element("id", "render").click()
    seen_running = wait(page, lambda: page.execute_script(
        "return document.getElementById('render-state').dataset.state === 'running' && "
        "document.querySelectorAll('#log li').length > 0 && document.querySelectorAll('#stages .stage').length > 0"),
        60, 0.02)
    assert seen_running
    screenshot(page, "studio-progress", tmp_path)
    wait(page, lambda: css(page, "#render-state[data-state=succeeded]"), 120)
    seen = page.execute_script("return window.studio.seen")
    kinds = {e.get("kind") for e in seen if e["type"] == "succeeded"}
    assert {"keyframe", "encode", "concat"} <= kinds
    assert seen[-1]["type"] == "job" and seen[-1]["message"] == "succeeded"
    # per stage and per worker
    stage = page.find_element("css selector", "#stages .stage[data-kind=encode]").text
    plan, _ = prepare(load_storyboard(project.storyboard), Output())
    assert stage.startswith(f"encode: {len(plan.encode_tasks)}/{len(plan.encode_tasks)}")
    assert css(page, "#workers .worker[data-worker=local]")
    assert project.output.is_file()
    assert prompt.get_attribute("value").endswith("(typed, not saved)")


def test_closing_the_page_does_not_stop_the_render(page, server, project):
    page.find_element("id", "render").click()
    wait(page, lambda: css(page, "#render-state[data-state=running]"), 30, 0.02)
    page.get("about:blank")  # the page is gone; the render goes on in the server
    deadline = time.monotonic() + 120
    while request(server, "GET", "/api/state").json()["render"]["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert request(server, "GET", "/api/state").json()["render"]["state"] == "succeeded"
    assert project.output.is_file()
