"""Reading transcripts: keyed text (Kaldi, MLC-SLM, meeteval), JSON Lines manifests, or
plain line-aligned text.

Utterances are identified by id, never by position, except in plain text where the user
said so. Every problem is reported as `file:line: what is wrong`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..core.errors import SbasrError
from ..io.files import jsonl_rows, read_text
from ..io.manifests import row_id, row_language, row_text

# Lines end at "\n" alone (a "\r" before it is trailing whitespace), as Kaldi and meeteval
# read them: str.splitlines() would also split at a form feed, U+0085 or U+2028 inside a
# transcript.


@dataclass
class Transcripts:
    """Parallel lists, one entry per utterance, in file order."""

    path: str
    ids: list[str]
    texts: list[str]
    languages: list[str | None] | None = None  # a manifest's "language" (or "lang"), as written


def read_transcripts(path: str | os.PathLike[str], *, by_line: bool = False) -> Transcripts:
    """Read a transcript file.

    Args:
        path: Keyed text (`id text` lines) or JSON Lines, told apart by content.
        by_line: Plain text instead, one utterance per line, keyed by line number.

    Returns:
        The ids, texts and (from JSON Lines) languages, in file order.

    Raises:
        SbasrError: The file cannot be read, or a line is malformed (named by number).
    """
    text = read_text(path)
    if by_line:
        return _parse_lines(str(path), text)
    if is_jsonl(text):
        return _parse_jsonl(str(path), text)
    return _parse_keyed(str(path), text)


def is_jsonl(text: str) -> bool:
    """Whether `text` is JSON Lines: its first non-blank line is a JSON object. Starting
    with "{" is not enough: a keyed line's id may begin with one (`{noise} ...`)."""
    # The first line with text, found without splitting the whole file (10^5 lines).
    stripped = text.lstrip()
    first = stripped.partition("\n")[0]
    if not first.lstrip().startswith("{"):
        return False  # the common keyed case, without a JSON parse
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return False


def _parse_keyed(path: str, text: str) -> Transcripts:
    ids, texts = keyed_rows(text)
    _check_unique(path, text, ids)
    return Transcripts(path, ids, texts)


def keyed_rows(text: str) -> tuple[list[str], list[str]]:
    """Ids and texts of keyed lines (`id text`), blank lines skipped."""
    # Comprehensions rather than a loop with appends: this runs over 10^5 lines.
    rows = [line.split(None, 1) for line in _lines(text)]
    if not all(rows):
        rows = [row for row in rows if row]  # blank lines
    ids = [row[0] for row in rows]
    # An id alone is a real utterance whose text is empty: it must be scored.
    texts = [row[1].rstrip() if len(row) == 2 else "" for row in rows]
    return ids, texts


def _lines(text: str) -> list[str]:
    """The lines of `text`, split at "\n" alone; a final "\n" ends the last line."""
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()
    return lines


def _parse_jsonl(path: str, text: str) -> Transcripts:
    # The row fields are read as manifests read them for transcribing and training.
    ids: list[str] = []
    texts: list[str] = []
    langs: list[str | None] = []
    for number, row in jsonl_rows(path, text):
        uid = row_id(row)
        if uid is None:
            raise SbasrError(f"{path}:{number}: no 'id' field")
        ids.append(uid)
        # A text field is required: a misnamed one must not score as an empty transcript.
        texts.append(row_text(path, number, row, required=True))
        langs.append(row_language(row))
    _check_unique(path, text, ids, jsonl=True)
    return Transcripts(path, ids, texts, langs)


def _parse_lines(path: str, text: str) -> Transcripts:
    texts = [line.strip() for line in _lines(text)]
    ids = [str(i) for i in range(1, len(texts) + 1)]
    return Transcripts(path, ids, texts)


def _check_unique(path: str, text: str, ids: list[str], jsonl: bool = False) -> None:
    if len(set(ids)) == len(ids):
        return
    # Slow path, taken once on error: find the line of the first repeat.
    seen: set[str] = set()
    dupe = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
    count = 0
    for number, line in enumerate(text.split("\n"), 1):
        if jsonl:
            hit = line.strip() and row_id(json.loads(line)) == dupe
        else:
            hit = line.split(None, 1)[:1] == [dupe]
        if hit:
            count += 1
            if count == 2:
                raise SbasrError(f"{path}:{number}: duplicate utterance id {dupe!r}")
    raise SbasrError(f"{path}: duplicate utterance id {dupe!r}")
