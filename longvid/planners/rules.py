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


# Words that open a noun phrase, pronouns, and a few verbs that do not end in -s: the planner's whole grammar.
DETERMINERS = {"a", "an", "the", "this", "that", "these", "those", "his", "her", "its", "their", "my", "our", "your",
               "some", "every", "each", "one", "two", "three", "no", "another"}
PRONOUNS = {"it", "he", "she", "they", "we", "i", "you"}
VERBS = {"is", "are", "was", "were", "has", "have", "can", "will", "comes", "goes", "runs", "falls", "rises"}
TRAILING = re.compile(r"[\s,]+(?:and|but|so|yet|or|then|and then)$", re.IGNORECASE)
LEADING = re.compile(r"^(?:and|but|so|yet|or)\s+", re.IGNORECASE)


def split_beats(prompt: str) -> list[str]:
    """The story beats of a prompt, in order: each a whole clause with its subject.

    A clause that has none ("and curls up to sleep") takes its sentence's subject ("the fox curls up to sleep");
    a sentence that opens with a pronoun takes the last subject named before it, so every shot's prompt says who is
    in it. Where no subject can be found, a clause stays joined to the one before it.
    """
    beats: list[str] = []
    named: str | None = None  # the last subject named (not a pronoun), definite: "the red fox"
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+|;", prompt.strip()):
        clauses = [_trimmed(c) for part in re.split(r",?\s+(?=then\b)", sentence.strip(" .;,"))
                   for c in split_clauses(part.strip(" .;,"))]
        clauses = [c for c in clauses if c]
        if not clauses:
            continue
        subject = _subject(clauses[0])
        if subject and subject.lower() in PRONOUNS and named:  # "It stretches" -> "The red fox stretches"
            clauses[0] = _with_subject(clauses[0], named, replace=True)
            subject = named
        elif subject:
            named = _definite(subject)
        out = [clauses[0]]
        for clause in clauses[1:]:
            if not _needs_subject(clause):
                out.append(clause)
            elif subject:
                out.append(_with_subject(clause, named if subject.lower() in PRONOUNS else _definite(subject)))
            else:  # nobody to give it: it stays with the clause before it
                out[-1] = f"{out[-1]}, {clause}"
        beats += out
    return beats


def _trimmed(clause: str) -> str:
    """A clause without a conjunction left hanging at either end ("hunts a mouse and" -> "hunts a mouse")."""
    previous = None
    while previous != clause:
        previous, clause = clause, LEADING.sub("", TRAILING.sub("", clause.strip(" ,")))
    return clause


def _lead(words: list[str]) -> int:
    """How many of `words` open the clause before its subject or verb: time words ("then", "finally", "later")."""
    for n in (3, 2, 1):
        if len(words) > n and TIME_WORDS.fullmatch(" ".join(words[:n]).rstrip(",")):
            return n
    return 0


def _verbish(word: str, before: str | None) -> bool:
    w = word.lower().strip(",")
    if w in VERBS:
        return True
    after_noun = before is not None and before.lower() not in DETERMINERS
    return len(w) > 3 and after_noun and (w.endswith("ed") or (w.endswith("s") and not w.endswith(("ss", "us", "is"))))


def _subject(clause: str) -> str | None:
    """The noun phrase a clause opens with (the words before its verb), or None when it cannot be told."""
    words = clause.split()
    words = words[_lead(words):]
    if not words:
        return None
    if words[0].lower() in PRONOUNS:
        return words[0]
    if words[0].lower() not in DETERMINERS and not words[0][:1].isupper():
        return None
    for i in range(1, min(len(words), 7)):
        if _verbish(words[i], words[i - 1]):
            return " ".join(words[:i])
    return None


def _needs_subject(clause: str) -> bool:
    """A clause that opens with its verb ("curls up to sleep", "then trots along the creek")."""
    words = clause.split()
    lead = _lead(words)
    words = words[lead:]
    # after a time word ("then falling") nothing but a subject may come first
    return bool(words) and words[0].lower() not in DETERMINERS | PRONOUNS and not words[0][:1].isupper() and \
        (lead > 0 or _verbish(words[0], ""))


def _definite(subject: str) -> str:
    """A subject as said again: "A red fox" -> "the red fox"; a name stays as it is."""
    first, _, rest = subject.partition(" ")
    if first.lower() in ("a", "an", "one", "some", "another") and rest:
        return f"the {rest}"
    return subject if first.lower() in PRONOUNS or first[:1].isupper() and first.lower() not in DETERMINERS \
        else subject[0].lower() + subject[1:]


def _with_subject(clause: str, subject: str, replace: bool = False) -> str:
    """`clause` with `subject` after its time words, in place of its pronoun when `replace`."""
    words = clause.split()
    lead = _lead(words)
    rest = words[lead + 1:] if replace else words[lead:]
    return " ".join([*words[:lead], subject, *rest])


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
        clause = re.sub(r"^then,?\s+", "", beat, flags=re.IGNORECASE)
        text = f"{FRAMINGS[(take - 1) % len(FRAMINGS)]}: {clause}" if take else clause[0].upper() + clause[1:]
        camera = "push-in" if i == 0 else CAMERAS[(salt + i) % len(CAMERAS)]
        # the id names the clause the prompt shows (its subject and verb), whatever framing it is given
        shots.append({"id": f"s{i + 1:02d}-{_slug(clause)}", "prompt": text, "duration": seconds, "camera": camera})
        roomy = i > 0 and min(shots[i - 1]["duration"], seconds) >= 2 * CROSSFADE
        if take == 0 and roomy and TIME_WORDS.match(beat):
            shots[i - 1]["transition"] = {"type": "crossfade", "duration": CROSSFADE}
    data = {"title": title or _title(beats[0]), "fps": fps, "width": width, "height": height, "seed": seed,
            "style": style, "shots": shots}
    return validate_data(data)


def _slug(text: str, words: int = 3) -> str:
    """An id from a clause's first words that say something: "Then the fox naps" -> "fox-naps"."""
    tokens = re.findall(r"[a-z0-9]+", text.lower())
    telling = [t for t in tokens[_lead(tokens):] if t not in DETERMINERS] or tokens
    return "-".join(telling[:words]) or "shot"


PREPOSITIONS = {"in", "on", "under", "over", "at", "by", "with", "through", "along", "as", "while", "into",
                "across", "from", "to", "near", "toward", "towards", "before", "after", "beside", "and", "but"}


def _title(beat: str, most: int = 8) -> str:
    """A title from the first beat: the clause whole, or up to a preposition when it is long (never mid-phrase)."""
    words = beat.split()
    if len(words) > most:
        cut = next((i for i in range(most, 2, -1) if words[i].lower() in PREPOSITIONS), None)
        words = words[:cut] if cut else words
    title = " ".join(words).rstrip(",.;")
    return title[0].upper() + title[1:]


def prompt_comment(prompt: str, width: int = 110) -> str:
    """The whole prompt as YAML comment lines (a storyboard's header says what it was planned from)."""
    import textwrap

    lines = textwrap.wrap(" ".join(prompt.split()), width - 2) or [""]
    return "".join(f"# {line}\n" for line in lines)
