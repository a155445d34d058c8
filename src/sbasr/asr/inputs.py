"""What to transcribe: audio files, directories searched for audio, manifests and Kaldi
data directories, each turned into recordings with optional spans.

The rows themselves are read by `sbasr.io.manifests`, the reader training uses too, so a
manifest row gets the same id and language whether it is transcribed or trained on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.errors import SbasrError
from ..io.audio import check_regular
from ..io.manifests import (
    AUDIO_SUFFIXES,
    MANIFEST_SUFFIXES,
    Utterance,
    find_audio,
    irregular_audio,
    is_kaldi_dir,
    path_language,
    read_jsonl,
    read_kaldi,
    read_mlcslm_file,
    recording_id,
    single_token,
)
from .segments import Span

__all__ = ["AUDIO_SUFFIXES", "MANIFEST_SUFFIXES", "Recording", "expand_inputs"]


@dataclass
class Recording:
    """One audio file to transcribe; `spans` are oracle segments, None for VAD."""

    id: str
    path: str
    spans: list[Span] | None = None
    language: str | None = None
    source: str = ""  # the argument it came from, for where outputs go by default
    segments_file: str | None = None  # the MLC-SLM file its spans came from
    # A manifest (or Kaldi) row without times: one utterance, whose VAD spans are joined
    # into one segment named `id`, so that its hypothesis has the row's own key.
    utterance: bool = False


def expand_inputs(
    paths: list[str | os.PathLike[str]], oracle_segments: bool = False
) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Recordings for `paths`, and (path, problem) for the arguments that give none.

    With `oracle_segments`, an MLC-SLM segment file (`<audio>.txt`) beside each audio file
    gives its spans.
    """
    recordings: list[Recording] = []
    problems: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        try:
            recordings += _expand(path, oracle_segments)
        except SbasrError as e:
            problems.append((str(path), str(e)))
        if path.is_dir():
            problems += [
                (str(p), f"{p}: not a regular file (a FIFO, device or socket): skipped")
                for p in irregular_audio(path)
            ]
    recordings, clashes = _unique_ids(recordings)
    return recordings, problems + clashes


def _expand(path: Path, oracle: bool) -> list[Recording]:
    if path.is_dir() and is_kaldi_dir(path):
        return _recordings(read_kaldi(path), str(path))
    if path.is_dir():
        return [_audio_file(p, path, str(path), oracle) for p in find_audio(path)]
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return _recordings(read_jsonl(path), str(path))
    if not path.exists():
        raise SbasrError(f"{path}: no such file")
    check_regular(path)
    return [_audio_file(path, path.parent, str(path), oracle)]


def _audio_file(path: Path, root: Path, source: str, oracle: bool) -> Recording:
    """One audio file; with `oracle`, its spans from the MLC-SLM segment file beside it
    (read as `read_mlcslm_dir` reads it for training: same ids, same languages)."""
    rid = recording_id(path, root)
    if not oracle:
        return Recording(rid, str(path), source=source)
    rows = read_mlcslm_file(path, rid, path_language(path, root))
    spans = sorted((_span(r) for r in rows), key=lambda s: s.start)
    return Recording(rid, str(path), spans, None, source, str(path.with_suffix(".txt")))


def _recordings(rows: list[Utterance], source: str) -> list[Recording]:
    """Rows grouped by audio file: rows with times become that file's oracle spans, a row
    without is a whole file of its own (segmented by VAD)."""
    _check_unique_rows(rows, source)
    by_audio: dict[str, Recording] = {}
    for row in rows:
        if not row.audio:
            raise SbasrError(f"{source}: utterance {row.id} names no recording in wav.scp")
        if row.start is None or row.end is None:
            by_audio[f"{row.audio}#{row.id}"] = Recording(
                row.id, row.audio, None, row.language, source, utterance=True
            )
            continue
        rec = by_audio.get(row.audio)
        if rec is None:
            rec = Recording(row.recording or Path(row.audio).stem, row.audio, [], None, source)
            by_audio[row.audio] = rec
        assert rec.spans is not None
        rec.spans.append(_span(row))
    for rec in by_audio.values():
        if rec.spans:
            rec.spans.sort(key=lambda s: (s.start, s.channel))
    return list(by_audio.values())


def _check_unique_rows(rows: list[Utterance], source: str) -> None:
    """Two rows of one manifest never share an id: each is a key of the keyed output (and
    names a file for a row without times), and a shared one would lose a transcript."""
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise SbasrError(
                f"{source}: id {row.id!r} is given to more than one row; every row needs its own id"
            )
        seen.add(row.id)


def _span(row: Utterance) -> Span:
    assert row.start is not None and row.end is not None, "a row with times"
    return Span(row.start, row.end, row.channel, row.speaker, row.id, row.language)


def _unique_ids(
    recordings: list[Recording],
) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Recordings of different files never share an id (their outputs would overwrite
    each other in one --output-dir), and (path, problem) for those left out.

    The same recording given twice (a file or manifest named twice) is transcribed once.
    A derived id (an audio file's name) that clashes is named by as many of its parent
    directories as it takes, e.g. en/activated.wav and fr/activated.wav -> en-activated,
    fr-activated. The id of a manifest row without times is its key in the keyed output
    and is never changed: a second recording with that id is left out and reported.
    """
    unique: dict[tuple, Recording] = {}
    for rec in recordings:
        spans = None if rec.spans is None else tuple(rec.spans)
        unique.setdefault((rec.id, rec.path, rec.utterance, spans), rec)
    recordings = list(unique.values())
    keys = {r.id for r in recordings if r.utterance}
    by_id: dict[str, set[str]] = {}
    for rec in recordings:
        if not rec.utterance:
            by_id.setdefault(rec.id, set()).add(rec.path)
    renamed: dict[tuple[str, str], str] = {}
    for rid, paths in by_id.items():
        if len(paths) < 2 and rid not in keys:
            continue
        parts = {p: Path(p).resolve().with_suffix("").parts for p in paths}
        names = {p: rid for p in paths}
        for depth in range(2, max(len(v) for v in parts.values()) + 1):
            names = {p: single_token("-".join(v[-depth:]).lstrip("/-")) for p, v in parts.items()}
            values = list(names.values())
            if len(set(values)) == len(values) and not keys.intersection(values):
                break
        renamed.update({(rid, p): name for p, name in names.items()})
    out: list[Recording] = []
    problems: list[tuple[str, str]] = []
    owner: dict[str, Recording] = {}
    for rec in recordings:
        if not rec.utterance:  # a row's own id is its key: never renamed
            rec = replace(rec, id=renamed.get((rec.id, rec.path), rec.id))
        first = owner.get(rec.id)
        if first is None:
            owner[rec.id] = rec
            out.append(rec)
            continue
        where = rec.source if rec.utterance else rec.path
        other = f"{first.source} ({first.path})" if first.utterance else first.path
        problems.append(
            (
                rec.path,
                f"{where}: id {rec.id!r} is already the id of {other}; ids name the output "
                "files, so no two recordings may share one",
            )
        )
    return out, problems
