"""The studio's ASGI app (Starlette): the page, its JSON API, server-sent progress, and the project's files.

Routes (every one behind `security`):

* ``GET /``: the page; with ``?token=`` it also sets the cookie the page's later requests carry.
* ``GET /api/state``: shots, tasks with their status and reasons, thumbnails, manifest facts, QA.
* ``POST /api/shots/{shot}``: change a shot's prompt, duration, camera, keyframes or transition.
* ``POST /api/takes``: another take of a keyframe or chunk (or back to an earlier one).
* ``POST /api/render``: render what is stale (one render at a time).
* ``GET /api/events``: server-sent events: the render's progress, and ``storyboard`` when the file changes.
* ``GET /thumb/{key}``, ``GET /artifact/{key}``: a cache artifact the page was shown; ``GET /video``: the video.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from longvid.cache import ArtifactStore, default_cache_dir
from longvid.errors import StoryboardError, UserError
from longvid.studio.edits import EditConflict, InvalidEdit, StoryboardFile
from longvid.studio.jobs import RenderOptions, Renders
from longvid.studio.security import (
    artifact_file,
    cookie_name,
    host_ok,
    request_token,
    same_origin,
    token_ok,
)
from longvid.studio.state import page_state

STATIC = Path(__file__).parent / "static"
PAGES = {"studio.js": "text/javascript", "studio.css": "text/css"}
THUMB_WIDTH = 240


class Studio:
    """The server's state: the storyboard file, the cache, the renders and the keys the page may fetch."""

    def __init__(self, storyboard: str | Path, options: RenderOptions, token: str):
        self.file = StoryboardFile(storyboard)
        self.store = ArtifactStore(options.cache_dir if options.cache_dir is not None else default_cache_dir())
        self.renders = Renders(self.file, options)
        self.token = token
        self.shown: set[str] = set()
        self._thumbs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.closing = threading.Event()  # set on shutdown: open event streams end

    def state(self) -> dict:
        out, shown = page_state(self.renders, self.store)
        with self._lock:
            self.shown |= shown
        return out

    def thumbnail(self, key: str) -> bytes | None:
        """A PNG a few hundred pixels wide of an image artifact, or of the first frame of a frames artifact."""
        from PIL import Image

        if key in self._thumbs:
            return self._thumbs[key]
        path = artifact_file(self.store.root, key, self.store.record(key), self.shown)
        if path is None:
            return None
        if path.suffix == ".png":
            image = Image.open(path).convert("RGB")
        else:
            image = Image.fromarray(next(self.store.frames(key, 0, 1)))
        image.thumbnail((THUMB_WIDTH, THUMB_WIDTH))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        self._thumbs[key] = buffer.getvalue()
        return self._thumbs[key]


def create_app(storyboard: str | Path, options: RenderOptions, token: str, hosts: set[str]) -> Starlette:
    """The studio app for one storyboard.

    Args:
        options: what every render started from the page is given (as `longvid render` would be).
        token: the secret every request must carry.
        hosts: the names the Host header may carry (the address the server listens on).
    """
    studio = Studio(storyboard, options, token)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in PAGES:
            return PlainTextResponse("not found", 404)
        return FileResponse(STATIC / name, media_type=PAGES[name], headers={"Cache-Control": "no-store"})

    def state(request: Request) -> Response:
        return JSONResponse(studio.state())

    async def edit(request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body.get("changes"), dict):
            return JSONResponse({"errors": ["an edit is {\"changes\": {field: value}, \"version\": ...}"]}, 400)
        changes = {k: _number(v) if k == "duration" else v for k, v in body["changes"].items()}
        return await _write(lambda: studio.file.edit_shot(request.path_params["shot"], changes, body.get("version")))

    async def take(request: Request) -> Response:
        body = await _json(request)
        task = str(body.get("task", ""))
        number = body.get("take")
        if number is None:  # "another take": one more than the one recorded now
            try:
                number = await asyncio.to_thread(studio.file.take_of, task) + 1
            except (UserError, StoryboardError) as exc:
                return JSONResponse({"errors": [str(exc)]}, 400)
        if not isinstance(number, int) or isinstance(number, bool):
            return JSONResponse({"errors": [f"`take` must be a whole number (got {number!r})"]}, 400)
        return await _write(lambda: studio.file.set_take(task, number, body.get("version")))

    async def render(request: Request) -> Response:
        try:
            job = await asyncio.to_thread(studio.renders.start)
        except RuntimeError as exc:
            return JSONResponse({"errors": [str(exc)]}, 409)
        except StoryboardError as exc:
            return JSONResponse({"errors": [str(p) for p in exc.problems]}, 422)
        return JSONResponse({"render": job.view()}, 202)

    async def events(request: Request) -> Response:
        given = request.headers.get("last-event-id") or request.query_params.get("from") or "0"
        start = int(given) if given.isdigit() else 0
        return StreamingResponse(_stream(request, studio, start), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def thumb(request: Request) -> Response:
        data = studio.thumbnail(request.path_params["key"])
        if data is None:
            return PlainTextResponse("not found", 404)
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})

    def artifact(request: Request) -> Response:
        key = request.path_params["key"]
        path = artifact_file(studio.store.root, key, studio.store.record(key), studio.shown)
        if path is None or path.suffix != ".png":
            return PlainTextResponse("not found", 404)
        return FileResponse(path, media_type="image/png")

    def video(request: Request) -> Response:
        path = studio.renders.options.output
        if not path.is_file():
            return PlainTextResponse("not rendered yet", 404)
        return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", page), Route("/static/{name}", static), Route("/api/state", state),
        Route("/api/shots/{shot}", edit, methods=["POST"]), Route("/api/takes", take, methods=["POST"]),
        Route("/api/render", render, methods=["POST"]), Route("/api/events", events),
        Route("/thumb/{key}", thumb), Route("/artifact/{key}", artifact), Route("/video", video),
    ]
    app = Starlette(routes=routes)
    app.state.studio = studio
    return Guard(app, token, hosts)


class Guard:
    """ASGI middleware: the token, the Host header and, for changes, the origin (see `security`)."""

    def __init__(self, app, token: str, hosts: set[str]):
        self.app, self.token, self.hosts = app, token, hosts
        self.state = app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        given, source = request_token(dict(request.query_params), request.headers, request.cookies,
                                       self.token)
        if not host_ok(request.headers.get("host"), self.hosts):
            refusal = PlainTextResponse("this server answers only to the address it listens on", 403)
        elif not token_ok(given, self.token):
            refusal = PlainTextResponse("a token is needed: open the address `longvid studio` printed (it carries "
                                        "?token=...)", 401)
        elif not same_origin(request.method, request.headers):
            refusal = PlainTextResponse("a change must come from the studio's own page (cross-origin request "
                                        "refused)", 403)
        else:
            refusal = None
        if refusal is not None:
            return await refusal(scope, receive, send)
        if source != "query" or scope["path"] != "/":
            return await self.app(scope, receive, send)

        async def with_cookie(message) -> None:  # the first page load: later requests carry the cookie
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append(
                    (b"set-cookie", f"{cookie_name(self.token)}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()))
            await send(message)

        await self.app(scope, receive, with_cookie)


async def _stream(request: Request, studio: Studio, start: int):
    """Progress events of the current render from `start`, then live; a ``storyboard`` event when the file on disk
    changes; a comment now and then so proxies keep the connection."""
    sent, job_number, quiet = start, None, 0
    version = request.query_params.get("version")  # the one the page holds: a change since is sent at once
    yield "retry: 1000\n\n"
    while not await request.is_disconnected() and not studio.closing.is_set():
        job = studio.renders.job
        if job is not None and job.number != job_number:
            if job_number is not None:
                sent = 0  # a new render: its events from the start
            job_number = job.number
            yield f"event: render\ndata: {json.dumps(job.view())}\n\n"
        if job is not None:
            for i, event in enumerate(job.events[sent:], start=sent):
                yield f"id: {i + 1}\nevent: progress\ndata: {json.dumps(event | {'job': job.number})}\n\n"
                sent = i + 1
        try:
            now = await asyncio.to_thread(lambda: studio.file.read()[1])
        except OSError:
            now = None
        if now != version:
            if version is not None:
                yield f"event: storyboard\ndata: {json.dumps({'version': now})}\n\n"
            version = now
        quiet += 1
        if quiet % 50 == 0:
            yield ": keep-alive\n\n"
        await asyncio.sleep(0.2)


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return body if isinstance(body, dict) else {}


async def _write(change) -> Response:
    """Run a change to the file: the new version, or the errors (422 invalid, 409 conflict, 400 bad request)."""
    try:
        version = await asyncio.to_thread(change)
    except InvalidEdit as exc:
        return JSONResponse({"errors": exc.problems}, 422)
    except EditConflict as exc:
        return JSONResponse({"errors": [str(exc)], "conflict": True}, 409)
    except UserError as exc:
        return JSONResponse({"errors": [str(exc)]}, 400)
    return JSONResponse({"version": version})


def _number(value):
    """A duration typed in the page: a number when it reads as one, else the text (the check says what is wrong)."""
    if isinstance(value, str):
        try:
            return int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            return value
    return value

