"""What an MP4 says about its own timing, read from its boxes (ISO/IEC 14496-12): each track's timescale, the
duration of every sample (``stts``) and the media its edit list skips (``elst``: a B-frame delay, AAC priming).

The concat reads its segments' reorder delays here to give the joined video one decode clock, and tests read the
output's sample durations here to hold it to a constant frame rate. Only the ``moov`` box is read: with
``+faststart`` it is at the front, and otherwise it is found by seeking past the media.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class Track:
    """One track's timing.

    Args:
        handler: ``vide``, ``soun`` and so on.
        timescale: ticks per second of its media.
        durations: its samples' durations in ticks, as ``stts`` runs ``(count, ticks)``.
        skipped: ticks of media its edit list skips at the start (0 without an edit list).
        presented: seconds its edit list presents (None without one: the whole media).
    """

    handler: str
    timescale: int
    durations: tuple[tuple[int, int], ...]
    skipped: int = 0
    presented: Fraction | None = None

    @property
    def samples(self) -> int:
        return sum(count for count, _ in self.durations)

    @property
    def media_seconds(self) -> Fraction:
        return Fraction(sum(count * ticks for count, ticks in self.durations), self.timescale)

    @property
    def seconds(self) -> Fraction:
        """How long it plays: what its edit list presents, else its media less what is skipped."""
        if self.presented is not None:
            return self.presented
        return self.media_seconds - Fraction(self.skipped, self.timescale)

    def sample_durations(self) -> list[int]:
        return [ticks for count, ticks in self.durations for _ in range(count)]


def tracks(path: str | Path) -> list[Track]:
    """Every track of the MP4 at `path`, in file order.

    Raises:
        ValueError: when the file holds no ``moov`` box (not an MP4, or cut short).
    """
    with open(path, "rb") as f:
        moov = _top_level(f, b"moov")
    if moov is None:
        raise ValueError(f"{path}: no `moov` box (not an MP4, or cut short)")
    movie_scale = next((_timescale(body) for kind, body in _boxes(moov) if kind == b"mvhd"), 1)
    return [_track(body, movie_scale) for kind, body in _boxes(moov) if kind == b"trak"]


def video_track(path: str | Path) -> Track:
    """The first video track of the MP4 at `path`."""
    found = next((t for t in tracks(path) if t.handler == "vide"), None)
    if found is None:
        raise ValueError(f"{path}: no video track")
    return found


def _top_level(f: BinaryIO, wanted: bytes) -> bytes | None:
    """The body of the first top-level box of that type, seeking past the others."""
    while True:
        header = f.read(8)
        if len(header) < 8:
            return None
        size, kind = struct.unpack(">I4s", header)
        skip = 8
        if size == 1:
            size, skip = struct.unpack(">Q", f.read(8))[0], 16
        if kind == wanted:
            return f.read(size - skip) if size else f.read()
        if size == 0:  # the last box runs to the end of the file
            return None
        f.seek(size - skip, 1)


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """The boxes inside a container box's body, as ``(type, body)``."""
    out, i = [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, i)
        skip = 8
        if size == 1:
            size, skip = struct.unpack_from(">Q", data, i + 8)[0], 16
        elif size == 0:
            size = len(data) - i
        if size < skip:
            raise ValueError(f"a `{kind.decode('latin1')}` box of {size} bytes")
        out.append((kind, data[i + skip:i + size]))
        i += size
    return out


def _child(data: bytes, *path: bytes) -> bytes | None:
    for kind in path:
        data = next((body for k, body in _boxes(data) if k == kind), None)
        if data is None:
            return None
    return data


def _timescale(header: bytes) -> int:
    """The timescale of an ``mvhd`` or ``mdhd`` body (version 1 has 64-bit times before it)."""
    return struct.unpack_from(">I", header, 20 if header[0] == 1 else 12)[0]


def _track(trak: bytes, movie_scale: int) -> Track:
    handler = (_child(trak, b"mdia", b"hdlr") or b"\0" * 12)[8:12].decode("latin1")
    mdhd = _child(trak, b"mdia", b"mdhd")
    stts = _child(trak, b"mdia", b"minf", b"stbl", b"stts") or b"\0" * 8
    count = struct.unpack_from(">I", stts, 4)[0]
    runs = tuple(struct.unpack_from(">II", stts, 8 + 8 * k) for k in range(count))
    skipped, presented = 0, None
    elst = _child(trak, b"edts", b"elst")
    if elst is not None:
        version, entries = elst[0], struct.unpack_from(">I", elst, 4)[0]
        form, width = (">QqHH", 20) if version == 1 else (">IiHH", 12)
        edits = [struct.unpack_from(form, elst, 8 + width * k) for k in range(entries)]
        media = [(duration, start) for duration, start, _, _ in edits if start >= 0]  # -1: an empty edit
        presented = Fraction(sum(edit[0] for edit in edits), movie_scale)
        skipped = media[0][1] if media else 0
    return Track(handler, _timescale(mdhd) if mdhd else 1, runs, skipped, presented)
