"""What to transcribe: audio files, directories searched for audio, and manifests (JSON
Lines: sbasr's `id, audio, start, end, speaker, channel, language`, or NeMo's
`audio_filepath, offset, duration`), each turned into recordings with optional spans."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import SbasrError
from ..io.files import jsonl_rows, read_text
from .segments import Span, read_mlcslm_segments

AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".flac",
        ".mp3",
        ".m4a",
        ".ogg",
        ".opus",
        ".aac",
        ".wma",
        ".amr",
        ".webm",
        ".mp4",
        ".mkv",
        ".mov",
        ".avi",
        ".sph",
    }
)
MANIFEST_SUFFIXES = frozenset({".jsonl", ".json"})


@dataclass
class Recording:
    """One audio file to transcribe; `spans` are oracle segments, None for VAD."""

    id: str
    path: str
    spans: list[Span] | None = None
    language: str | None = None
    source: str = ""  # the argument it came from, for where outputs go by default
    segments_file: str | None = None  # the MLC-SLM file its spans came from


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
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
                if not found:
                    raise SbasrError(f"{path}: no audio files in this directory")
                for p in found:
                    rid = "-".join(p.relative_to(path).with_suffix("").parts)
                    recordings.append(_audio_file(p, rid, str(path), oracle_segments))
            elif path.suffix.lower() in MANIFEST_SUFFIXES:
                recordings += read_manifest(path)
            elif path.exists():
                recordings.append(_audio_file(path, path.stem, str(path), oracle_segments))
            else:
                raise SbasrError(f"{path}: no such file")
        except SbasrError as e:
            problems.append((str(path), str(e)))
    return _unique_ids(recordings), problems


def _unique_ids(recordings: list[Recording]) -> list[Recording]:
    """Recordings of different files never share an id (their outputs would overwrite
    each other in one --output-dir): clashing ones are named by as many of their parent
    directories as it takes, e.g. en/activated.wav and fr/activated.wav -> en-activated,
    fr-activated."""
    by_id: dict[str, set[str]] = {}
    for rec in recordings:
        by_id.setdefault(rec.id, set()).add(rec.path)
    renamed: dict[tuple[str, str], str] = {}
    for rid, paths in by_id.items():
        if len(paths) < 2:
            continue
        parts = {p: Path(p).with_suffix("").parts for p in paths}
        for depth in range(2, max(len(v) for v in parts.values()) + 1):
            names = {p: "-".join(v[-depth:]).lstrip("/-") for p, v in parts.items()}
            if len(set(names.values())) == len(names):
                break
        renamed.update({(rid, p): name for p, name in names.items()})
    return [replace(r, id=renamed.get((r.id, r.path), r.id)) for r in recordings]


def _audio_file(path: Path, rid: str, source: str, oracle: bool) -> Recording:
    if not oracle:
        return Recording(rid, str(path), source=source)
    seg_file = path.with_suffix(".txt")
    if not seg_file.is_file():
        raise SbasrError(f"{path}: --segments needs {seg_file.name} beside it")
    spans = read_mlcslm_segments(seg_file, rid)
    return Recording(rid, str(path), spans, source=source, segments_file=str(seg_file))


def manifest_fields(
    path: Path, number: int, row: dict
) -> tuple[Path, float | None, float | None, str | None]:
    """(audio, start, end, language) of a manifest row, in sbasr's names or NeMo's
    (`audio_filepath`, `offset`, `duration`); relative audio paths are from the manifest."""
    audio = row.get("audio", row.get("audio_filepath"))
    if not audio:
        raise SbasrError(f"{path}:{number}: no 'audio' (or 'audio_filepath') field")
    audio_path = Path(audio) if Path(audio).is_absolute() else path.parent / audio
    start = row.get("start", row.get("offset"))
    end = row.get("end")
    if end is None and start is not None and row.get("duration") is not None:
        end = float(start) + float(row["duration"])
    language = row.get("language") or row.get("lang")
    start = None if start is None else float(start)
    return audio_path, start, None if end is None else float(end), language


def read_manifest(path: Path) -> list[Recording]:
    """Rows grouped by audio file: rows with times become that file's oracle spans."""
    by_audio: dict[str, Recording] = {}
    for number, row in jsonl_rows(path, read_text(path)):
        audio_path, start, end, language = manifest_fields(path, number, row)
        uid = str(row.get("id", row.get("utt_id", audio_path.stem)))
        key = str(audio_path)
        if start is None or end is None:  # the whole file, segmented by VAD
            by_audio[f"{key}#{uid}"] = Recording(uid, key, None, language, str(path))
            continue
        if end <= start:
            raise SbasrError(f"{path}:{number}: segment ends before it starts")
        rec = by_audio.setdefault(key, Recording(audio_path.stem, key, [], None, str(path)))
        assert rec.spans is not None
        rec.spans.append(
            Span(
                float(start),
                float(end),
                int(row.get("channel", 0)),
                row.get("speaker"),
                uid,
                language,
            )
        )
    if not by_audio:
        raise SbasrError(f"{path}: the manifest is empty")
    for rec in by_audio.values():
        if rec.spans:
            rec.spans.sort(key=lambda s: (s.start, s.channel))
    return list(by_audio.values())
