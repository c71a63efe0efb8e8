"""Who may talk to the studio, and which files it may hand out.

* Every request carries the token (``?token=``, an ``X-Longvid-Token`` header, or the cookie the first page load
  sets from it); without it the answer is 401.
* The Host header must name the address the server listens on, so a web page elsewhere cannot reach it through a
  DNS name that resolves to 127.0.0.1 (DNS rebinding).
* A request that changes something also needs its Origin (or, without one, ``Sec-Fetch-Site``) to be this server:
  a page on another site cannot make the browser post here with the cookie.
* Files: only a cache artifact named by its key (and a key the page was shown), resolved inside the cache, and
  the rendered video. Anything else, traversal and symlinks out of the cache included, is 404.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from urllib.parse import urlsplit

COOKIE = "longvid_studio"
KEY = re.compile(r"^[0-9a-f]{16,128}$")
SAFE_METHODS = ("GET", "HEAD")


def token_ok(given: str | None, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def cookie_name(token: str) -> str:
    """The cookie of one studio: cookies ignore ports, so two studios on one machine must not share a name."""
    return f"{COOKIE}_{hashlib.sha256(token.encode()).hexdigest()[:12]}"


def request_token(query: dict, headers, cookies: dict, token: str) -> tuple[str | None, str]:
    """The token a request carries, and where it came from (``query``, ``header`` or ``cookie``)."""
    for source, value in (("query", query.get("token")), ("header", headers.get("x-longvid-token")),
                          ("cookie", cookies.get(cookie_name(token)))):
        if value:
            return value, source
    return None, ""


def host_ok(host_header: str | None, allowed: set[str]) -> bool:
    """The Host header names this server (any port check is the socket's own: it is the port we listen on)."""
    if not host_header:
        return False
    host = urlsplit(f"//{host_header}").hostname or ""
    return host.lower() in allowed


def same_origin(method: str, headers) -> bool:
    """A state-changing request comes from this server's own page."""
    if method in SAFE_METHODS:
        return True
    origin, host = headers.get("origin"), headers.get("host")
    if origin is not None:
        parts = urlsplit(origin)
        return parts.scheme == "http" and parts.netloc.lower() == (host or "").lower()
    return headers.get("sec-fetch-site") == "same-origin"


def artifact_file(root: Path, key: str, record: dict | None, shown: set[str]) -> Path | None:
    """The artifact file of `key`, if the page was shown it and it lies inside the cache; else None (404)."""
    if not KEY.match(key) or key not in shown or record is None:
        return None
    name = record.get("artifact")
    if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", ".."):
        return None
    path = root / "objects" / key[:2] / key / name
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_file() and real.is_relative_to(root.resolve()) else None
