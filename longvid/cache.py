"""The content-addressed artifact store: keys, atomic publish, checked reads, status with reasons, cleaning.

A task's key is the sha256 of everything that decides its output: the stage, the stage's code version, the
canonical parameters, the seed, the model id and the keys of its inputs. Changing one shot therefore changes the
keys of that shot's tasks and of what depends on them, and nothing else.

Layout under the cache root::

    objects/ab/abcd.../artifact.png | .mkv | .npy | .mp4
                                                     the output (keyframe image, frames, a model's latents, or an
                                                     H.264 segment)
    objects/ab/abcd.../record.json                   what made it, with the artifact's size and sha256; written
                                                     last, so its presence means "done"
    tasks/<sha256(project, task id)>.json            the last record published for that task, to explain
                                                     why a task is stale (``param_changed: prompt``)
    tmp/                                             files being written by stages, moved into objects/ when done

Frames are stored losslessly as Ut Video in Matroska (RGB, bit-exact; about a third of raw size on real
footage, and fast to write and read), images as PNG. See docs/benchmarks.md for disk use per minute.

Every read checks the artifact against its record: the size always, the sha256 once per process. A damaged
artifact raises `DamagedArtifactError`; the executor discards it and renders it again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from longvid.errors import DamagedArtifactError

RECORD = "record.json"
PARTIAL = ".partial"
# Stored bytes per output pixel, to estimate the space a render needs (measured: docs/benchmarks.md).
BYTES_PER_PIXEL = {"image": 1.0, "frames": 1.0, "latents": 0.1, "segment": 0.05, "audio": 0.0, "file": 0.0}


@dataclass(frozen=True)
class Latents:
    """A video model's final latents, as its pipeline returns them with ``output_type="latent"`` (float16 or
    float32), and the facts their decode needs (kept in the record, read back with `ArtifactStore.latents`)."""

    array: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def task_key(stage: str, code_version: str, params: Mapping[str, Any], seed: int | None, model: str | None,
             input_keys: Sequence[str]) -> str:
    """The content signature of one task (hex sha256).

    Parameters whose name starts with ``_`` (at any depth) say *where* something is, not what it is, e.g. the path
    of a user's image next to its sha256: they are left out, so moving a project keeps its cache.
    """
    payload = {"stage": stage, "code_version": code_version, "params": _content(params), "seed": seed,
               "model": model, "inputs": list(input_keys)}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _content(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _content(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [_content(v) for v in value]
    return value


def default_cache_dir() -> Path:
    """``$LONGVID_CACHE``, else ``$XDG_CACHE_HOME/longvid``, else ``~/.cache/longvid``."""
    if os.environ.get("LONGVID_CACHE"):
        return Path(os.environ["LONGVID_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "longvid"


# -------------------------------------------------------------------------------------------------- atomic files


def publish(tmp: str | Path, final: str | Path) -> None:
    """Atomic publish: fsync the finished temporary file, give it normal permissions, rename it over `final`."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; published files get what open() would
    os.replace(tmp, final)


def temp_beside(path: Path, suffix: str = "") -> Path:
    """A new empty temporary file in `path`'s folder (same file system, so the final rename is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{PARTIAL}{suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` to `path` through a temporary file, fsync and a rename."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -------------------------------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class TaskStatus:
    """Whether a task will run again, and why."""

    task: str
    state: str  # fresh | stale | missing
    reasons: tuple[str, ...] = ()


# Artifacts this process has hashed, with the (size, mtime, inode) they had then: artifacts never change once
# published, so one check per process is enough unless the file itself changes (any write changes its mtime).
_VERIFIED: dict[Path, tuple[int, int, int]] = {}


class ArtifactStore:
    """Artifacts by key under `root`, published atomically with a record each."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def folder(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    def record(self, key: str) -> dict | None:
        try:
            record = json.loads((self.folder(key) / RECORD).read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) and "artifact" in record else None

    def has(self, key: str) -> bool:
        """Done: the record exists, and so does the artifact it names, at the size it records."""
        return self.damage(key, deep=False) is None

    def damage(self, key: str, *, deep: bool = True) -> str | None:
        """Why the entry for `key` cannot be used (``missing``, a size or sha256 mismatch), or None when it can.

        Args:
            deep: also hash the artifact against its record (once per process while the file is unchanged).
        """
        record = self.record(key)
        if record is None:
            return "missing"
        path = self.folder(key) / record["artifact"]
        try:
            stat = path.stat()
        except OSError:
            return "missing artifact"
        if record.get("bytes") is not None and stat.st_size != record["bytes"]:
            return f"{stat.st_size} bytes, the record says {record['bytes']}"
        seen = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if deep and record.get("sha256") and _VERIFIED.get(path) != seen:
            if file_sha256(path) != record["sha256"]:
                return "its sha256 differs from the record's"
            _VERIFIED[path] = seen
        return None

    def discard(self, key: str) -> None:
        """Remove an entry (a damaged one, so that it is rendered again)."""
        shutil.rmtree(self.folder(key), ignore_errors=True)

    def touch(self, key: str) -> None:
        """Mark an entry as used now, for least-recently-used cleaning."""
        record = self.folder(key) / RECORD
        if record.exists():
            os.utime(record)

    def scratch(self, suffix: str) -> Path:
        """A new empty file for a stage to write an artifact into, on the cache's file system (see `put`)."""
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="scratch.", suffix=f"{PARTIAL}{suffix}", dir=folder)
        os.close(fd)
        return Path(path)

    # ------------------------------------------------------------------------------------------ writing

    def put(self, key: str, value: np.ndarray | Iterable[np.ndarray] | Latents | Path, record: Mapping[str, Any],
            audio: tuple[np.ndarray, int] | None = None) -> dict:
        """Store an image (H x W x 3), frames (F x H x W x 3, or an iterable of frames), `Latents` (as .npy) or a
        finished file (a `Path`, moved in: from `scratch`), then its record with the artifact's size and sha256.

        Args:
            audio: frames' sound, (channels x samples float32 in [-1, 1], sample rate): a FLAC stream of 16 bits
                beside the frames, in the same file (read with `audio`).
        """
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(value, Path):
            name = f"artifact{value.suffix.replace(PARTIAL, '') or '.bin'}"
            publish(value, folder / name)
            extra: dict[str, Any] = {}
        elif isinstance(value, Latents):
            name = "artifact.npy"
            tmp = temp_beside(folder / name, ".npy")
            try:
                np.save(tmp, value.array, allow_pickle=False)
                publish(tmp, folder / name)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            extra = {"shape": list(value.array.shape), "dtype": str(value.array.dtype), "meta": dict(value.meta)}
        elif isinstance(value, np.ndarray) and value.ndim == 3:
            name = "artifact.png"
            tmp = temp_beside(folder / name, ".png")
            try:
                from PIL import Image

                Image.fromarray(value).save(tmp, format="PNG", compress_level=1)
                publish(tmp, folder / name)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            extra = {"shape": list(value.shape)}
        else:
            name = "artifact.mkv"
            count, shape = _write_lossless(folder / name, value, audio)
            extra = {"frames": count, "shape": shape}
            if audio is not None:
                extra["audio"] = {"rate": int(audio[1]), "channels": int(audio[0].shape[0]),
                                  "samples": int(audio[0].shape[1])}
        artifact = folder / name
        full = dict(record) | extra | {"key": key, "artifact": name, "bytes": artifact.stat().st_size,
                                       "sha256": file_sha256(artifact), "created": time.time()}
        try:
            write_atomic(folder / RECORD, json.dumps(full, indent=1, sort_keys=True))
        except BaseException:  # an artifact without its record is not done: never leave one behind
            artifact.unlink(missing_ok=True)
            raise
        stat = artifact.stat()
        _VERIFIED[artifact] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        return full

    def remember(self, project: str, task_id: str, record: Mapping[str, Any]) -> None:
        """Note `record` as the latest for `task_id` in `project`, to explain later changes."""
        path = self._index(project, task_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(record, sort_keys=True))

    def last(self, project: str, task_id: str) -> dict | None:
        try:
            return json.loads(self._index(project, task_id).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _index(self, project: str, task_id: str) -> Path:
        return self.root / "tasks" / (hashlib.sha256(f"{project}\0{task_id}".encode()).hexdigest() + ".json")

    # ------------------------------------------------------------------------------------------ reading

    def path(self, key: str) -> Path:
        """The artifact's file, checked against its record.

        Raises:
            DamagedArtifactError: it is missing, or its size or sha256 is not the record's.
        """
        why = self.damage(key)
        if why is not None:
            raise DamagedArtifactError(key, why)
        return self.folder(key) / self.record(key)["artifact"]

    def image(self, key: str) -> np.ndarray:
        from PIL import Image

        with Image.open(self.path(key)) as image:
            return np.asarray(image.convert("RGB")).copy()

    def frames(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """The stored frames ``[start, stop)`` one at a time (never all in memory)."""
        import imageio_ffmpeg

        path = self.path(key)
        record = self.record(key)
        height, width = record["shape"][1:3]
        count = record["frames"] if stop is None else min(stop, record["frames"])
        # Every Ut Video frame is a key frame: seeking half a frame before the first wanted one lands on it exactly.
        seek = ["-ss", f"{(start - 0.5) / LOSSLESS_FPS:.6f}"] if start > 0 else []
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", input_params=seek)
        next(reader)
        for _, raw in zip(range(count - start), reader, strict=False):
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        reader.close()

    def audio(self, key: str) -> tuple[np.ndarray, int] | None:
        """The sound stored with frames (channels x samples float32, sample rate), or None when they have none."""
        import subprocess

        import imageio_ffmpeg

        info = (self.record(key) or {}).get("audio")
        if info is None:
            return None
        path = self.path(key)
        raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0",
                              "-f", "s16le", "-acodec", "pcm_s16le", "-"], capture_output=True, check=True).stdout
        samples = np.frombuffer(raw, np.int16).reshape(-1, info["channels"]).T.astype(np.float32) / 32768
        return samples[:, :info["samples"]], info["rate"]

    def latents(self, key: str) -> Latents:
        path = self.path(key)
        return Latents(np.load(path, allow_pickle=False), self.record(key).get("meta", {}))

    def load(self, key: str) -> np.ndarray:
        """An image, all frames as one array, or latents."""
        record = self.record(key)
        if record is None:
            raise DamagedArtifactError(key, "missing")
        if record["artifact"].endswith(".npy"):
            return self.latents(key).array
        return self.image(key) if record["artifact"].endswith(".png") else np.stack(list(self.frames(key)))

    # ------------------------------------------------------------------------------------------ status and cleaning

    def status(self, project: str, task_id: str, key: str, record: Mapping[str, Any]) -> TaskStatus:
        """Fresh, stale or missing, with reasons, comparing `record` (what would run now) with the last run."""
        why = self.damage(key, deep=False)
        if why is None:
            return TaskStatus(task_id, "fresh")
        if why != "missing":
            return TaskStatus(task_id, "missing", ("missing_artifact",) if why == "missing artifact" else
                              (f"damaged_artifact: {why}",))
        last = self.last(project, task_id)
        if last is None:
            return TaskStatus(task_id, "missing", ("never_rendered",))
        if last.get("key") == key:
            return TaskStatus(task_id, "missing", ("missing_artifact",))
        return TaskStatus(task_id, "stale", tuple(explain_change(last, record)) or ("key_changed",))

    def entries(self) -> list[tuple[Path, float, int]]:
        """(folder, last used, bytes) of every entry."""
        out = []
        for record in (self.root / "objects").glob(f"*/*/{RECORD}"):
            folder = record.parent
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            out.append((folder, record.stat().st_mtime, size))
        return out

    def clean(self, *, older_than: float | None = None, max_bytes: int | None = None, now: float | None = None
              ) -> tuple[int, int]:
        """Remove entries unused for `older_than` seconds, then the least recently used down to `max_bytes`.

        Also removes half-written files left by killed renders. Returns (entries removed, bytes freed).
        """
        now = time.time() if now is None else now
        removed = freed = 0
        entries = sorted(self.entries(), key=lambda e: e[1])
        total = sum(size for _, _, size in entries)
        for folder, used, size in entries:
            too_old = older_than is not None and now - used > older_than
            too_big = max_bytes is not None and total > max_bytes
            if too_old or too_big:
                shutil.rmtree(folder, ignore_errors=True)
                removed, freed, total = removed + 1, freed + size, total - size
        for stray in [*(self.root / "objects").glob(f"*/*/*{PARTIAL}*"), *(self.root / "tmp").glob(f"*{PARTIAL}*")]:
            if now - stray.stat().st_mtime > 3600:
                freed += stray.stat().st_size
                stray.unlink(missing_ok=True)
        return removed, freed

    def verify(self, *, repair: bool = False) -> Iterator[tuple[str, str, str | None]]:
        """Check every entry against its record (size and sha256); yields ``(key, why, task id)`` for each
        damaged one.

        Args:
            repair: remove damaged entries, so the next render makes them again.
        """
        for folder in sorted(p for p in (self.root / "objects").glob("*/*") if p.is_dir()):
            key = folder.name
            why = self.damage(key)
            if why == "missing" and (folder / RECORD).exists():
                why = "unreadable record"
            elif why == "missing":
                why = "no record (an interrupted write)"
            if why is not None:
                task = (self.record(key) or {}).get("task")
                if repair:
                    self.discard(key)
                yield key, why, task

    def free_bytes(self) -> int:
        """Free space on the cache's file system."""
        folder = self.root
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return shutil.disk_usage(folder).free


def explain_change(last: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """Why the task `now` differs from its `last` run: ``code_changed``, ``param_changed: prompt``, ..."""
    reasons = []
    if last.get("stage") != now.get("stage") or last.get("code_version") != now.get("code_version"):
        reasons.append(f"code_changed: {last.get('stage')} v{last.get('code_version')} -> "
                       f"{now.get('stage')} v{now.get('code_version')}")
    old, new = _content(last.get("params", {})), _content(now.get("params", {}))  # locations never count
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            a, b = old.get(name), new.get(name)
            scalar = all(isinstance(v, int | float | str | None) for v in (a, b))
            reasons.append(f"param_changed: {name} {_short(a)} -> {_short(b)}" if scalar else f"param_changed: {name}")
    if last.get("seed") != now.get("seed"):
        takes = last.get("take", 0), now.get("take", 0)  # a record keeps its take only when it is not 0
        reasons.append(f"seed_changed: take {takes[0]} -> {takes[1]}" if takes[0] != takes[1] else "seed_changed")
    if last.get("model") != now.get("model"):
        reasons.append(f"model_changed: {last.get('model')} -> {now.get('model')}")
    old_inputs, new_inputs = last.get("inputs", {}), now.get("inputs", {})
    changed = sorted(t for t in set(old_inputs) | set(new_inputs) if old_inputs.get(t) != new_inputs.get(t))
    if changed:
        reasons.append(f"input_changed: {', '.join(changed)}")
    return reasons


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


LOSSLESS_FPS = 24  # the rate stored frames carry (only seeking uses it)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC (or a quota) anywhere in the chain of `exc`."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_message(root: Path) -> str:
    """What a full disk means for a render, and what to do."""
    try:
        free = ArtifactStore(root).free_bytes()
    except OSError:
        free = 0
    return (f"no space left for the cache at {root} ({human_bytes(free)} free): free some with `longvid cache "
            f"clean --older-than 7d` (or --max-size 20G), or render with --cache DIR on a larger disk")


def human_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def _write_lossless(path: Path, frames: Iterable[np.ndarray], audio: tuple[np.ndarray, int] | None = None
                    ) -> tuple[int, list[int]]:
    """Frames to Ut Video (bit-exact RGB) through the ffmpeg that imageio-ffmpeg ships, with their sound as FLAC
    when given; atomic."""
    import imageio_ffmpeg

    tmp = temp_beside(path, ".mkv")
    wav = _write_wav(temp_beside(path, ".wav"), *audio) if audio is not None else None
    sound = {"audio_path": str(wav), "audio_codec": "flac"} if wav else {}
    writer = None
    count, shape = 0, []
    try:
        for frame in frames:
            if writer is None:
                shape = [0, *frame.shape]
                writer = imageio_ffmpeg.write_frames(
                    str(tmp), (frame.shape[1], frame.shape[0]), fps=LOSSLESS_FPS, codec="utvideo", pix_fmt_in="rgb24",
                    pix_fmt_out="gbrp", quality=None, macro_block_size=1, ffmpeg_log_level="error",
                    output_params=["-f", "matroska"], **sound)
                writer.send(None)
            writer.send(np.ascontiguousarray(frame))
            count += 1
        if writer is None:
            raise ValueError(f"no frames to store at {path}")
        writer.close()
        shape[0] = count
        publish(tmp, path)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if wav is not None:
            wav.unlink(missing_ok=True)
    return count, shape


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """channels x samples float32 in [-1, 1] to a 16-bit WAV file."""
    import wave

    pcm = np.clip(np.rint(np.asarray(samples, np.float32).T * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(pcm.tobytes())
    return path
