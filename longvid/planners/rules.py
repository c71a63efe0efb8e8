"""The default planner: a prompt becomes a storyboard by rules, with no model. Deterministic.

1. Beats: the prompt is split at sentence ends, semicolons, line breaks and "then", then into clauses at commas
   and at "and", "but", "so", "yet" where both sides are long enough to be clauses of their own ("a cat and a dog
   play" stays whole).
2. Shots: one per beat, merged when shots would be shorter than `MIN_SHOT` seconds, repeated with new framings
   when they would be longer than `MAX_SHOT`.
3. Durations: in proportion to each beat's length, allocated in quarter seconds (exact in binary floating point)
   by largest remainder, so they sum exactly to the target.
4. Camera moves cycle through a list (the first shot establishes); a beat that opens with a time word
   ("later", "meanwhile", ...) is entered through a crossfade.
"""

from __future__ import annotations

import hashlib
import math
import re

from longvid.planners.request import check_request
from longvid.storyboard import StoryboardSpec, validate_data

MIN_SHOT, MAX_SHOT = 2.0, 8.0
QUANTUM = 0.25
CROSSFADE = 0.5
CAMERAS = ("static", "pan-right", "push-in", "tilt-up", "pan-left", "pull-out", "zoom-in", "tilt-down")
FRAMINGS = ("Wide shot", "Medium shot", "Close-up", "Low angle", "Over-the-shoulder shot")  # prefixes: "Close-up: ..."
# A comma (maybe with a conjunction), or a conjunction alone: where a sentence may divide into clauses.
CLAUSE_BREAK = re.compile(r",\s*(?:(?:and|but|so|yet)\s+)?|\s+(?:and|but|so|yet)\s+", re.IGNORECASE)
MIN_WORDS = {",": 3, "and": 4}  # words a clause needs on the left of a comma, of a bare conjunction; 3 on the right
TIME_WORDS = re.compile(r"^(later|meanwhile|then|finally|eventually|afterwards|after that|next|that night|"
                        r"the next (day|morning)|years later|soon|at (dawn|dusk|night))\b", re.IGNORECASE)


def split_beats(prompt: str) -> list[str]:
    """The story beats of a prompt, in order."""
    parts = re.split(r"(?<=[.!?;])\s+|\n+|,?\s+(?=then\b)|;", prompt.strip())
    beats = [clause for p in parts for clause in split_clauses(p.strip(" .;,"))]
    return [b for b in beats if b]


def split_clauses(sentence: str) -> list[str]:
    """`sentence` divided at commas and conjunctions wherever both sides are long enough to stand alone."""
    clauses, start = [], 0
    for m in CLAUSE_BREAK.finditer(sentence):
        left, right = sentence[start:m.start()], sentence[m.end():]
        if len(left.split()) >= MIN_WORDS["," if "," in m.group() else "and"] and len(right.split()) >= 3:
            clauses.append(left.strip(" ,"))
            start = m.end()
    return [*clauses, sentence[start:].strip(" ,")]


def allocate(weights: list[float], total: float, quantum: float = QUANTUM) -> list[float]:
    """Split `total` seconds in proportion to `weights`, in multiples of `quantum`; the sum is exactly `total`.

    Each part gets at least one quantum; what does not divide into quanta goes to the last part.
    """
    units = math.floor(total / quantum + 1e-9)
    if units < len(weights):
        raise ValueError(f"{total:g} s cannot hold {len(weights)} shots of at least {quantum:g} s")
    spare = units - len(weights)
    shares = [spare * w / sum(weights) for w in weights]
    counts = [1 + math.floor(s) for s in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(shares[i] - math.floor(shares[i])), i))
    for i in by_remainder[: units - sum(counts)]:
        counts[i] += 1
    durations = [c * quantum for c in counts]
    durations[-1] += total - units * quantum
    return durations


def plan_from_prompt(prompt: str, *, duration: float = 30.0, fps: float = 24, width: int = 832, height: int = 480,
                     seed: int = 0, style: str = "", title: str | None = None) -> StoryboardSpec:
    """A storyboard of `duration` seconds that tells `prompt`.

    Raises:
        StoryboardError: when the result does not validate (e.g. an fps out of range).
        UserError: an empty prompt, or a duration too short to plan (`planners.request`).
    """
    check_request(prompt, duration)
    beats = split_beats(prompt)
    if duration < MIN_SHOT:
        beats = [", then ".join(beats)]
    # Merge neighbours until shots are long enough; repeat with new framings until short enough.
    while len(beats) > 1 and duration / len(beats) < MIN_SHOT:
        shortest = min(range(len(beats) - 1), key=lambda i: (len(beats[i]) + len(beats[i + 1]), i))
        beats[shortest : shortest + 2] = [f"{beats[shortest]}, then {beats[shortest + 1]}"]
    entries = [(b, 0) for b in beats]
    repeats = max(1, math.ceil(duration / (MAX_SHOT * len(beats))))
    if repeats > 1:
        entries = [(b, r) for b in beats for r in range(repeats)]

    salt = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:2], "big")
    durations = allocate([len(b.split()) + 4 for b, _ in entries], duration)
    shots = []
    for i, ((beat, take), seconds) in enumerate(zip(entries, durations, strict=True)):
        text = re.sub(r"^then\s+", "", beat, flags=re.IGNORECASE)
        if take:
            text = f"{FRAMINGS[(take - 1) % len(FRAMINGS)]}: {text}"
        camera = "push-in" if i == 0 else CAMERAS[(salt + i) % len(CAMERAS)]
        shots.append({"id": f"s{i + 1:02d}-{_slug(text if take == 0 else beat)}", "prompt": text[0].upper() + text[1:],
                      "duration": seconds, "camera": camera})
        roomy = i > 0 and min(shots[i - 1]["duration"], seconds) >= 2 * CROSSFADE
        if take == 0 and roomy and TIME_WORDS.match(beat):
            shots[i - 1]["transition"] = {"type": "crossfade", "duration": CROSSFADE}
    data = {"title": title or _title(beats[0]), "fps": fps, "width": width, "height": height, "seed": seed,
            "style": style, "shots": shots}
    return validate_data(data)


def _slug(text: str, words: int = 3) -> str:
    tokens = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(tokens[:words]) or "shot"


def _title(beat: str) -> str:
    words = beat.split()
    return " ".join(words[:6]).rstrip(",.").capitalize() + ("..." if len(words) > 6 else "")
