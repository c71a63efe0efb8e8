"""Sound files through the ffmpeg that imageio-ffmpeg ships: what a file holds, and its samples, decoded as a
stream.

The storyboard's checks probe files here (a missing file, one with no sound, a voice line too long for the video);
the mix decodes them here, resampled to the mix's rate, without ever holding a whole file in memory.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


@dataclass(frozen=True)
class SoundInfo:
    """What `probe` finds: the length in seconds (to ffmpeg's 10 ms), the first audio stream's rate and layout."""

    duration: float
    rate: int
    channels: str


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: str | Path) -> SoundInfo:
    """What the sound file at `path` holds.

    Raises:
        ValueError: the file is missing, or ffmpeg finds no audio in it; the message says which.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"sound file not found: {path}")
    # `ffmpeg -i` without an output describes the input on stderr (and exits 1, as it has nothing to write)
    info = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, text=True,
                          errors="replace").stderr
    stream = re.search(r"Stream #\S+.*?: Audio: [^,]+, (\d+) Hz, ([^,\n]+)", info)
    duration = DURATION.search(info)
    if stream is None or duration is None:
        why = info.strip().splitlines()[-1] if info.strip() else "no output from ffmpeg"
        raise ValueError(f"cannot read {path} as sound ({why})")
    hours, minutes, seconds = duration.groups()
    return SoundInfo(int(hours) * 3600 + int(minutes) * 60 + float(seconds), int(stream[1]), stream[2].strip())


def decode_to(path: str | Path, raw: Path, rate: int, channels: int = 2) -> int:
    """Decode `path` into `raw` as interleaved float32 samples at `rate` with `channels`; returns its sample count.

    ffmpeg streams it to disk, so a long file never sits in memory; the mix reads the raw file block by block.
    """
    subprocess.run([ffmpeg(), "-y", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0", "-ac", str(channels),
                    "-ar", str(rate), "-f", "f32le", str(raw)], check=True, capture_output=True)
    return raw.stat().st_size // (4 * channels)
