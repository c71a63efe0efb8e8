"""`longvid studio`: a local web app to review a long render shot by shot, edit the storyboard, ask for another
take of one keyframe or chunk, and render what is stale (docs/studio.md).

Served by uvicorn on 127.0.0.1 unless told otherwise; every request needs the token printed with the address.
"""

from __future__ import annotations

import secrets
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from longvid._imports import require
from longvid.errors import UserError
from longvid.studio.jobs import RenderOptions

LOCAL = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass
class Server:
    """A running studio: its address (with the token), and how to stop it."""

    url: str
    host: str
    port: int
    token: str
    app: object
    _server: object
    _socket: socket.socket | None = None
    _thread: threading.Thread | None = None

    def wait(self) -> None:
        """Serve in this thread until interrupted (the CLI)."""
        self._server.run(sockets=[self._socket])

    def stop(self) -> None:
        self.app.state.studio.closing.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def start(storyboard: str | Path, options: RenderOptions, *, host: str = LOCAL, port: int | None = DEFAULT_PORT,
          token: str | None = None, background: bool = False) -> Server:
    """Bind the studio's socket and build its app.

    Args:
        port: the port; ``None`` or 0 picks a free one; the default falls back to a free one when it is taken.
        background: serve from a thread now (tests, notebooks); else call `Server.wait`.

    Raises:
        UserError: the storyboard is missing, or the port cannot be bound.
    """
    require("starlette", extra="studio", feature="`longvid studio`")
    uvicorn = require("uvicorn", extra="studio", feature="`longvid studio`")
    from longvid.studio.app import create_app

    path = Path(storyboard)
    if not path.is_file():
        raise UserError(f"storyboard file not found: {path}")
    token = token or secrets.token_urlsafe(24)
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    hosts = {host.lower(), "localhost", LOCAL} if host in (LOCAL, "localhost") else {host.lower()}
    app = create_app(path, options, token, hosts)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
    studio = Server(f"http://{shown}:{port}/?token={token}", host, port, token, app, server, sock)
    if background:
        studio._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="longvid-studio",
                                          daemon=True)
        studio._thread.start()
        while not server.started and studio._thread.is_alive():
            threading.Event().wait(0.02)
    return studio


def _bind(host: str, port: int | None) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for attempt in ([port, 0] if port == DEFAULT_PORT else [port or 0]):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, attempt))
        except OSError as exc:
            sock.close()
            if attempt == port and port == DEFAULT_PORT:
                continue
            raise UserError(f"cannot listen on {host}:{attempt}: {exc.strerror or exc} (choose another --port or "
                            f"--host)") from None
        sock.listen(64)
        sock.set_inheritable(True)
        return sock
    raise AssertionError("unreachable")


__all__ = ["RenderOptions", "Server", "start"]
