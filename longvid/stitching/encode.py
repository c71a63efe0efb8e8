"""H.264 on the ffmpeg that imageio-ffmpeg ships: streaming MP4 writers, and joining segments by stream copy.

A render encodes its output as segments (one x264 run each, opening on an IDR frame) and joins them with ffmpeg's
concat demuxer, copying the streams: nothing is encoded twice, and the join is exact to the frame. Every file is
written under a temporary name beside its target and renamed only when complete, so no path ever holds half a
video.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from longvid.cache import publish, temp_beside
from longvid.errors import RenderError
from longvid.stitching.mp4 import video_track

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in the module only from Python 3.10 on Linux
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def check_settings(crf: int, preset: str) -> None:
    """Raise ValueError naming the setting when `crf` or `preset` is not one x264 takes."""
    if not 0 <= crf <= 51:
        raise ValueError(f"`crf` ({crf}) must be between 0 and 51")
    if preset not in PRESETS:
        raise ValueError(f"`preset` ({preset!r}) must be one of {', '.join(PRESETS)}")


class Mp4Writer:
    """Context manager: ``with Mp4Writer(path, w, h, fps) as out: out.write(frame)``.

    Frames go to ffmpeg through a pipe as they arrive (enlarged to 1 MiB where the system allows: a 720p frame is
    2.7 MB, and the default 64 KiB pipe costs tens of context switches per frame).

    Args:
        path: the final .mp4 path.
        width, height: frame size; even numbers (yuv420p), multiples of 16 for storyboards.
        fps: frames per second (fractional rates are kept exact).
        crf: x264 constant rate factor, 0 (lossless) to 51; 18 is visually lossless.
        preset: x264 speed preset.
        threads: x264 threads. Segments use 1: x264's frame threads make the bytes depend on timing and thread
            count, and a segment's bytes must depend on its content alone (it is cached by it). Parallelism comes
            from encoding several segments at once.
    """

    PIPE_BYTES = 1 << 20

    def __init__(self, path: str | Path, width: int, height: int, fps: float, *, crf: int = 18, preset: str = "medium",
                 threads: int | None = None):
        check_settings(crf, preset)
        self.path = Path(path)
        self.size = (width, height)
        self.fps = video_rate(fps)
        self.crf, self.preset, self.threads = crf, preset, threads
        self.frames = 0
        self._tmp: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> Mp4Writer:
        import imageio_ffmpeg

        self._started = time.time()
        self._tmp = temp_beside(self.path, ".mp4")
        width, height = self.size
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-nostdin", "-f", "rawvideo",
               "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(self.fps), "-i", "pipe:0", "-an",
               "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(self.crf), "-preset", self.preset,
               *(["-threads", str(self.threads)] if self.threads else []), "-movflags", "+faststart", "-f", "mp4",
               str(self._tmp)]
        self._log = tempfile.TemporaryFile()  # ffmpeg's errors, read only if it fails
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)
        with contextlib.suppress(ImportError, OSError):  # Linux only, and only up to pipe-max-size
            import fcntl

            fcntl.fcntl(self._proc.stdin.fileno(), F_SETPIPE_SZ, self.PIPE_BYTES)
        return self

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.size[1], self.size[0], 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame {self.frames} is {frame.shape} {frame.dtype}, expected "
                             f"({self.size[1]}, {self.size[0]}, 3) uint8")
        try:
            self._proc.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except (BrokenPipeError, OSError) as exc:
            raise _ffmpeg_error(RenderError(f"ffmpeg stopped taking frames: {self._errors()}"), self._tmp,
                                self._errors()) from exc
        self.frames += 1

    def _errors(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-800:]

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._proc.stdin.close()
            if exc_type is not None:
                self._proc.kill()
            code = self._proc.wait()
            if exc_type is None and code != 0:
                raise _ffmpeg_error(RenderError(f"ffmpeg failed to encode {self.path.name}: {self._errors()}"),
                                    self._tmp, self._errors())
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        finally:
            self._log.close()
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)
            return
        publish(self._tmp, self.path)
        # Renders of this output that were killed mid-encode leave their partial files behind; sweep them.
        for stale in self.path.parent.glob(f".{self.path.stem}.*.partial.mp4"):
            if stale.stat().st_mtime < self._started:
                stale.unlink(missing_ok=True)


def concat(segments: list[Path], output: str | Path, fps: float, audio: Path | None = None) -> None:
    """Join MP4 `segments` (same codec settings, each opening on an IDR frame) into `output` by stream copy,
    with the index first (+faststart); atomic. `audio`: a sound track as long as the video, encoded to AAC.

    Every frame of the output lasts exactly one frame at `fps`. The concat demuxer places each segment's
    presentation times right, but x264 delays a segment's decode clock by its B-frame reorder depth, and a segment
    too short for B-frames (1 to 3 frames) has none: its decode times then jump or run backwards against its
    neighbours', which the muxer "fixes" into uneven sample durations (a variable frame rate). So the joined
    stream is given one decode clock, ``dts = n - delay`` in frames with the deepest delay of any segment, and its
    presentation times are taken in whole frames.
    """
    import imageio_ffmpeg

    output = Path(output)
    rate = video_rate(fps)
    delay = max(_reorder_delay(Path(p), rate) for p in segments)
    clock = f"setts=prescale=1:time_base={rate.denominator}/{rate.numerator}:pts=PTS:dts=N-{delay}:duration=1"
    tmp = temp_beside(output, ".mp4")
    with tempfile.TemporaryDirectory(prefix="longvid-concat-") as folder:
        listing = Path(folder) / "segments.txt"
        listing.write_text("".join(f"file '{_quoted(p)}'\n" for p in segments), encoding="utf-8")
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "concat", "-safe", "0",
               "-i", str(listing), *(["-i", str(audio), "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-b:a", "192k"]
                                      if audio else []),
               "-c:v", "copy", "-bsf:v", clock, "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4",
               str(tmp)]
        result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise _ffmpeg_error(RenderError(f"ffmpeg could not join the segments: {result.stderr.strip()[-500:]}"), tmp,
                            result.stderr)
    publish(tmp, output)


def _reorder_delay(segment: Path, rate: Fraction) -> int:
    """Frames by which a segment's decode clock runs behind its presentation (its edit list skips them)."""
    track = video_track(segment)
    return round(Fraction(track.skipped, track.timescale) * rate)


def write_wav(sound: Path, output: str | Path) -> None:
    """A sound file (the stored soundtrack) as 24-bit WAV at `output`; atomic."""
    import imageio_ffmpeg

    output = Path(output)
    tmp = temp_beside(output, ".wav")
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-nostdin", "-i", str(sound),
                             "-c:a", "pcm_s24le", "-f", "wav", str(tmp)], capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise _ffmpeg_error(RenderError(f"ffmpeg could not write {output.name}: {result.stderr.strip()[-500:]}"), tmp,
                            result.stderr)
    publish(tmp, output)


def _quoted(path: Path) -> str:
    # the concat demuxer's quoting: inside single quotes, a quote is closed, escaped and reopened
    return str(Path(path).resolve()).replace("'", "'\\''")


def _ffmpeg_error(exc: BaseException, where: Path | None, log: str = "") -> BaseException:
    """ffmpeg failed writing `where`: a full disk becomes ENOSPC (so the render stops at once), else `exc`."""
    text = f"{log} {exc}"
    if "No space left on device" in text or getattr(exc, "errno", None) == errno.ENOSPC:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where) if where else None)
    return exc


def video_rate(fps: float) -> Fraction:
    """The exact rate for ffmpeg; 23.976, 29.97 and 59.94 mean the NTSC rates 24000/1001 and so on."""
    for base in (24, 30, 48, 60, 120):
        ntsc = Fraction(base * 1000, 1001)
        if abs(fps - float(ntsc)) < 0.001:
            return ntsc
    return Fraction(fps).limit_denominator(1000)
