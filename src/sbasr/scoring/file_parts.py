"""Two keyed transcript files cut after the same line numbers, so that each scoring
process reads and parses only its own lines.

Reading and parsing 10^5 lines of each file took a quarter of `sbasr score`'s run, in
the first process alone, before the others started. A recogniser's output and its
reference usually list the same ids in the same order: then both files can be cut at the
same line numbers into parts of about equal size, and each process decodes and parses its
own part of each. Whether the cut holds (the same ids in the same order, none twice) is
for the caller to check from the parts; where it does not, the whole files are scored the
ordinary way, which also gives the errors their file and line.

Neither file is ever held whole: the cuts are found in one streamed pass over each, and
a part is read in blocks of a few megabytes (`FileParts.blocks`), the same lines of both
files at a time, so that scoring 10^7 utterances needs the memory of one block per
process, not of both files.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

# Bytes read at a time: the cut search's reads, and about a block of lines of a part.
BLOCK = 8 << 20


@dataclass(frozen=True)
class FileParts:
    """Both files' paths and, per part, its byte range in each (a BOM left out)."""

    hyp_path: str
    ref_path: str
    cuts: list[tuple[slice, slice]]  # (hypothesis range, reference range) of each part

    def texts(self, cut: tuple[slice, slice]) -> tuple[str, str]:
        """The part's hypothesis and reference lines, whole; UnicodeDecodeError if not
        UTF-8."""
        hyp, ref = _read_range(self.hyp_path, cut[0]), _read_range(self.ref_path, cut[1])
        return hyp.decode("utf-8"), ref.decode("utf-8")

    def blocks(
        self, cut: tuple[slice, slice], size: int | None = None
    ) -> Iterator[tuple[str, str]]:
        """The part's hypothesis and reference lines, the same lines of each at a time:
        about `size` bytes of the reference, whole lines, and as many lines of the
        hypothesis (`size`: `BLOCK` by default). Where the hypothesis runs out first, its
        last block has fewer lines; where it has more, a block of them comes last with an
        empty reference. UnicodeDecodeError if
        not UTF-8."""
        size = size or BLOCK
        with open(self.hyp_path, "rb") as hyp_file, open(self.ref_path, "rb") as ref_file:
            hyp = _Lines(hyp_file, cut[0], size)
            ref = _Lines(ref_file, cut[1], size)
            while True:
                ref_block = ref.about(size)
                if not ref_block:
                    break
                hyp_block = hyp.lines(ref_block.count(b"\n") + (not ref_block.endswith(b"\n")))
                yield hyp_block.decode("utf-8"), ref_block.decode("utf-8")
            rest = hyp.about(size)  # lines past the reference's: a block of them says so
            if rest:
                yield rest.decode("utf-8"), ""


class _Lines:
    """Whole lines from a byte range of an open file, a block at a time."""

    def __init__(self, file, span: slice, size: int) -> None:
        self.file, self.left, self.size = file, span.stop - span.start, size
        file.seek(span.start)
        self.buffer = b""

    def _more(self) -> bool:
        if self.left <= 0:
            return False
        data = self.file.read(min(self.size, self.left))
        if not data:
            self.left = 0
            return False
        self.left -= len(data)
        self.buffer += data
        return True

    def about(self, size: int) -> bytes:
        """About `size` bytes: whole lines, the range's end (which may lack a newline)."""
        while len(self.buffer) < size and self._more():
            pass
        end = self.buffer.rfind(b"\n", 0, size) + 1 if len(self.buffer) > size else 0
        while not end:
            if not self._more():
                end = len(self.buffer)
                break
            end = self.buffer.rfind(b"\n") + 1
        out, self.buffer = self.buffer[:end], self.buffer[end:]
        return out

    def lines(self, n: int) -> bytes:
        """The next `n` lines (fewer where the range ends first)."""
        while self.buffer.count(b"\n") < n and self._more():
            pass
        ends = np.flatnonzero(np.frombuffer(self.buffer, np.uint8) == 10)
        end = int(ends[n - 1]) + 1 if len(ends) >= n else len(self.buffer)
        out, self.buffer = self.buffer[:end], self.buffer[end:]
        return out


def cut_alike(
    hyp_path: str | os.PathLike[str], ref_path: str | os.PathLike[str], parts: int, least: int
) -> FileParts | None:
    """Both files cut after the same line numbers into at most `parts` parts of about
    equal reference size, with about `least` lines or more each; None where that cannot
    be (a file unreadable or JSON Lines, too short, or the hypothesis shorter). With
    `parts` 1, the one part is the whole of both files (read in blocks)."""
    try:
        hyp_start, ref_start = _start(hyp_path), _start(ref_path)
        if hyp_start is None or ref_start is None:
            return None  # JSON Lines: left to the ordinary reader
        hyp_size, ref_size = os.path.getsize(hyp_path), os.path.getsize(ref_path)
        # Too few lines for the parts: the ordinary path. Other line counts in the two
        # files need no count here: the parts' ids then differ, which the caller checks.
        wanted, parts = parts, min(parts, _line_ends(ref_path, ref_start, [])[0] // max(1, least))
        if parts < 1 or (parts == 1 and wanted > 1):
            return None
        # The first part, done by the first process, is a twentieth larger: the others
        # start only once forked.
        shares = [
            ref_start + (ref_size - ref_start) * (20 * i + 1) // (20 * parts)
            for i in range(1, parts)
        ]
        chosen = _line_ends(ref_path, ref_start, shares)[1]
        hyp_cuts = _offsets_after(hyp_path, hyp_start, [line for line, _ in chosen])
    except OSError:
        return None  # the ordinary path says what is wrong
    if hyp_cuts is None:
        return None
    bounds_ref = [ref_start, *(offset for _, offset in chosen), ref_size]
    bounds_hyp = [hyp_start, *hyp_cuts, hyp_size]
    if any(b <= a for a, b in pairwise(bounds_hyp)) or any(b <= a for a, b in pairwise(bounds_ref)):
        return None
    cuts = [
        (slice(bounds_hyp[k], bounds_hyp[k + 1]), slice(bounds_ref[k], bounds_ref[k + 1]))
        for k in range(len(bounds_ref) - 1)
    ]
    return FileParts(str(hyp_path), str(ref_path), cuts)


def _start(path: str | os.PathLike[str]) -> int | None:
    """Where the text of `path` starts (after a BOM), or None where it looks like JSON
    Lines (left to the ordinary reader, which tells it from a keyed line whose id begins
    with a brace)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    return None if head[start:].lstrip()[:1] == b"{" else start


def _line_ends(
    path: str | os.PathLike[str], start: int, shares: list[int]
) -> tuple[int, list[tuple[int, int]]]:
    """The number of lines of `path` from `start`, and for each byte offset of `shares`
    the first line end at or past it: (lines up to and including it, offset after it).
    One streamed pass, counting newlines in C."""
    found: list[tuple[int, int]] = []
    lines, pos, last = 0, start, b""
    pending = list(shares)
    with open(path, "rb") as f:
        f.seek(start)
        while chunk := f.read(BLOCK):
            while pending:
                at = max(pending[0], pos) - pos
                if at >= len(chunk):
                    break
                nl = chunk.find(b"\n", at)
                if nl < 0:
                    break
                pending.pop(0)
                line = lines + chunk.count(b"\n", 0, nl + 1)
                if not found or found[-1][0] != line:
                    found.append((line, pos + nl + 1))
            lines += chunk.count(b"\n")
            pos += len(chunk)
            last = chunk[-1:]
    if last and last != b"\n":
        lines += 1  # a last line without its newline
    # a cut after the last line is no cut
    found = [(line, off) for line, off in found if off < pos]
    return lines, found


def _offsets_after(path: str | os.PathLike[str], start: int, lines: list[int]) -> list[int] | None:
    """The offset just after each of the `lines`-th newlines of `path` (counted from
    `start`), in one streamed pass; None where the file has fewer lines."""
    out: list[int] = []
    have, pos = 0, start
    with open(path, "rb") as f:
        f.seek(start)
        while len(out) < len(lines) and (chunk := f.read(BLOCK)):
            count = chunk.count(b"\n")
            ends = None
            while len(out) < len(lines) and have + count >= lines[len(out)]:
                if ends is None:
                    ends = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10)
                out.append(pos + int(ends[lines[len(out)] - have - 1]) + 1)
            have += count
            pos += len(chunk)
    return out if len(out) == len(lines) else None


def _read_range(path: str, span: slice) -> bytes:
    with open(path, "rb") as f:
        f.seek(span.start)
        return f.read(span.stop - span.start)
