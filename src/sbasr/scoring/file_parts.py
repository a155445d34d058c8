"""Two keyed transcript files cut after the same line numbers, so that each scoring
process reads and parses only its own lines.

Reading and parsing both files whole is a large share of `sbasr score`'s run, in the
first process alone, before the others start. A recogniser's output and its
reference usually list the same ids in the same order: then both files can be cut at the
same line numbers into parts of about equal size, and each process decodes and parses its
own part of each. Whether the cut holds (the same ids in the same order, none twice) is
for the caller to check from the parts; where it does not, the whole files are scored the
ordinary way, which also gives the errors their file and line.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileParts:
    """Both files' bytes (without a BOM) and, per part, its byte range in each."""

    hyp: bytes
    ref: bytes
    cuts: list[tuple[slice, slice]]  # (hypothesis range, reference range) of each part

    def texts(self, cut: tuple[slice, slice]) -> tuple[str, str]:
        """The part's hypothesis and reference lines; UnicodeDecodeError if not UTF-8."""
        return self.hyp[cut[0]].decode("utf-8"), self.ref[cut[1]].decode("utf-8")


def cut_alike(
    hyp_path: str | os.PathLike[str], ref_path: str | os.PathLike[str], parts: int, least: int
) -> FileParts | None:
    """Both files cut after the same line numbers into at most `parts` parts of about
    equal reference size, with about `least` lines or more each; None where that cannot
    be (a file unreadable or JSON Lines, too short, or the hypothesis shorter)."""
    try:
        hyp, ref = _read(hyp_path), _read(ref_path)
    except OSError:
        return None  # the ordinary path says what is wrong
    if _looks_like_json(hyp) or _looks_like_json(ref):
        return None
    # Too few lines for the parts: the ordinary path. Other line counts in the two files
    # need no count here: the parts' ids then differ, which the caller checks.
    parts = min(parts, _line_count(ref) // max(1, least))
    if parts < 2:
        return None
    # Each part ends at the first line end past about i/parts of the reference's bytes,
    # and the hypothesis is cut after the same line. Found with bytes.find and bytes.count,
    # in C, rather than a scan of both files for every line end. The first part, done by
    # the first process, is a little larger: the others start only once forked.
    bounds_ref, bounds_hyp = [0], [0]
    for i in range(1, parts):
        share = len(ref) * (20 * i + 1) // (20 * parts)
        end = ref.find(b"\n", max(bounds_ref[-1], share))
        if end < 0 or end + 1 >= len(ref):
            break
        line = ref.count(b"\n", 0, end + 1)  # the lines before this cut
        cut = _after_line(hyp, line, len(hyp) * (end + 1) // len(ref))
        if cut is None or cut <= bounds_hyp[-1]:
            return None
        bounds_ref.append(end + 1)
        bounds_hyp.append(cut)
    bounds_ref.append(len(ref))
    bounds_hyp.append(len(hyp))
    cuts = [
        (slice(bounds_hyp[k], bounds_hyp[k + 1]), slice(bounds_ref[k], bounds_ref[k + 1]))
        for k in range(len(bounds_ref) - 1)
    ]
    return FileParts(hyp, ref, cuts) if len(cuts) > 1 else None


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _after_line(data: bytes, line: int, guess: int) -> int | None:
    """The offset just after the `line`-th newline, searched from `guess` (the two files'
    lines are about as long, so it is near): None where there is no such line."""
    guess = min(max(guess, 0), len(data))
    start = data.rfind(b"\n", 0, guess) + 1  # the start of the line holding `guess`
    have = data.count(b"\n", 0, start)  # newlines before it
    while have < line:
        nl = data.find(b"\n", start)
        if nl < 0:
            return None
        start, have = nl + 1, have + 1
    while have > line:
        start = data.rfind(b"\n", 0, start - 1) + 1
        have -= 1
    return start if start > 0 else None


def _read(path: str | os.PathLike[str]) -> bytes:
    data = Path(path).read_bytes()
    return data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data


def _looks_like_json(data: bytes) -> bool:
    """Starts like JSON Lines (left to the ordinary reader, which tells it from a keyed
    line whose id begins with a brace)."""
    return data.lstrip()[:1] == b"{"
