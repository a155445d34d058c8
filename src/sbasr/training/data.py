"""Training and evaluation data: JSON Lines manifests, MLC-SLM directories and Kaldi data
directories, read into one list of examples and checked once before training.

Audio is decoded and resampled to 16 kHz on the fly, one segment at a time; a row whose
audio cannot be read is skipped and counted, it never stops an epoch.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..asr.inputs import manifest_fields
from ..asr.segments import MAX_SPAN, mlcslm_lines
from ..errors import SbasrError
from ..io import languages
from ..io.audio import load_range
from ..io.files import jsonl_rows, read_text


@dataclass(frozen=True)
class Example:
    """One utterance to learn from or to score."""

    id: str
    audio: str
    text: str
    language: str | None = None  # a code
    start: float | None = None  # seconds; None with end: the whole file
    end: float | None = None
    speaker: str | None = None

    @property
    def duration(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


@dataclass
class DataReport:
    """What `check_examples` found; bad rows are dropped, never trained on."""

    total: int = 0
    kept: int = 0
    missing_audio: list[str] = field(default_factory=list)
    unreadable_audio: list[str] = field(default_factory=list)
    empty_text: list[str] = field(default_factory=list)
    too_long: list[str] = field(default_factory=list)
    unknown_language: list[str] = field(default_factory=list)
    seconds: float = 0.0
    languages: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        langs = ", ".join(f"{lang or '?'} {n:,}" for lang, n in self.languages.most_common())
        out = [
            f"{self.kept:,} of {self.total:,} examples kept, {self.seconds / 3600:.2f} h; {langs}"
        ]
        for label, ids in (
            ("missing audio", self.missing_audio),
            ("unreadable audio", self.unreadable_audio),
            ("empty text", self.empty_text),
            (f"over {MAX_SPAN:.0f} s", self.too_long),
            ("unknown language", self.unknown_language),
        ):
            if ids:
                out.append(f"  skipped {len(ids):,} with {label} (first: {ids[0]})")
        return out


def read_examples(source: str | os.PathLike[str]) -> list[Example]:
    """Examples from a manifest (.jsonl), a Kaldi data directory (has wav.scp and text) or
    an MLC-SLM directory (recordings with `.txt` segment files)."""
    path = Path(source)
    if path.is_file():
        return _read_manifest(path)
    if not path.is_dir():
        raise SbasrError(f"{path}: no such file or directory")
    if (path / "wav.scp").is_file() and (path / "text").is_file():
        return _read_kaldi(path)
    return _read_mlcslm(path)


def _read_manifest(path: Path) -> list[Example]:
    out = []
    for number, row in jsonl_rows(path, read_text(path)):
        audio_path, start, end, lang = manifest_fields(path, number, row)
        out.append(
            Example(
                str(row.get("id", row.get("utt_id", f"{audio_path.stem}-{number}"))),
                str(audio_path),
                str(row.get("text") or ""),
                _code(lang),
                start,
                end,
                row.get("speaker"),
            )
        )
    return out


def _read_mlcslm(root: Path) -> list[Example]:
    """Per recording a `.wav` and a `.txt` of `start end speaker text`; the language is the
    first path part that names one (`English/American/...`)."""
    out = []
    for txt in sorted(root.rglob("*.txt")):
        audio = next(
            (
                txt.with_suffix(s)
                for s in (".wav", ".flac", ".mp3", ".ogg")
                if txt.with_suffix(s).exists()
            ),
            None,
        )
        if audio is None:
            continue
        rel = txt.relative_to(root).with_suffix("")
        lang = next((c for c in (languages.to_code(p) for p in rel.parts) if c), None)
        rid = "-".join(rel.parts)
        for x in mlcslm_lines(txt, rid):
            out.append(Example(x.id, str(audio), x.text, lang, x.start, x.end, x.speaker))
    if not out:
        raise SbasrError(f"{root}: no recordings with .txt segment files, nor a Kaldi data dir")
    return out


def _read_kaldi(root: Path) -> list[Example]:
    def table(name: str) -> dict[str, str]:
        path = root / name
        if not path.is_file():
            return {}
        rows = {}
        for line in read_text(path).splitlines():
            parts = line.split(maxsplit=1)
            if parts:
                rows[parts[0]] = parts[1].strip() if len(parts) == 2 else ""
        return rows

    wavs, texts, langs = table("wav.scp"), table("text"), table("utt2lang")
    pipes = [k for k, v in wavs.items() if v.endswith("|")]
    if pipes:
        raise SbasrError(f"{root / 'wav.scp'}: command pipes are not supported ({pipes[0]})")
    segments = {}
    if (root / "segments").is_file():
        for number, line in enumerate(read_text(root / "segments").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise SbasrError(f"{root / 'segments'}:{number}: expected 'utt rec start end'")
            segments[parts[0]] = (parts[1], float(parts[2]), float(parts[3]))
    out = []
    for uid, text in texts.items():
        rec, start, end = segments.get(uid, (uid, None, None))
        audio = wavs.get(rec, "")
        audio_path = Path(audio) if Path(audio).is_absolute() or not audio else root / audio
        out.append(
            Example(uid, str(audio_path) if audio else "", text, _code(langs.get(uid)), start, end)
        )
    return out


def check_examples(examples: list[Example]) -> tuple[list[Example], DataReport]:
    """Drop what cannot be trained on, once, before training: missing or unreadable audio,
    empty text, segments over 30 s, unknown languages."""
    report = DataReport(total=len(examples))
    durations: dict[str, float | None] = {}
    kept = []
    for ex in examples:
        if ex.audio not in durations:
            durations[ex.audio] = _probe(ex.audio)
        total = durations[ex.audio]
        if not ex.audio or not Path(ex.audio).exists():
            report.missing_audio.append(ex.id)
        elif total is None:
            report.unreadable_audio.append(ex.id)
        elif not ex.text.strip():
            report.empty_text.append(ex.id)
        elif (ex.duration if ex.duration is not None else total) > MAX_SPAN:
            report.too_long.append(ex.id)
        elif ex.language is not None and ex.language not in languages.WHISPER_CODES:
            report.unknown_language.append(ex.id)
        else:
            # whole files get their probed length, so that batches can be cut by seconds
            kept.append(ex if ex.duration is not None else replace(ex, start=0.0, end=total))
            report.seconds += ex.duration if ex.duration is not None else total
            report.languages[ex.language] += 1
    report.kept = len(kept)
    return kept, report


def load_example_audio(ex: Example) -> np.ndarray:
    """The example's samples at 16 kHz, mono."""
    return load_range(ex.audio, ex.start, ex.end)


def _probe(path: str) -> float | None:
    """The duration of an audio file from its header, or None if it cannot be opened."""
    if not path or not Path(path).exists():
        return None
    try:
        import av

        with av.open(path) as container:
            if not container.streams.audio:
                return None
            if container.duration:
                return container.duration / 1_000_000
            stream = container.streams.audio[0]
            return float(stream.duration * stream.time_base) if stream.duration else None
    except Exception:  # any failure to open means unreadable
        return None


def _code(language: object) -> str | None:
    return languages.to_code(str(language)) if language else None
