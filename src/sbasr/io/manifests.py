"""Reading utterance lists: JSON Lines manifests (sbasr's fields or NeMo's), Kaldi data
directories and MLC-SLM directories, all into one row type.

Transcription (`sbasr.asr.inputs`), training (`sbasr.training.data`) and scoring
(`sbasr.scoring.transcripts`) read the same files, so an utterance gets the same id, audio
path, times and language code whichever command reads it. Every problem is one line that
names the file (and the line where there is one).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import SbasrError
from . import languages
from .files import jsonl_rows, read_text

# What a directory is searched for; FFmpeg (through PyAV) decodes all of these.
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
# The fields manifests name an utterance's id by; the first one present wins.
ID_FIELDS = ("id", "utt_id", "key")
# The fields a transcript's text may be under; the first one present wins.
TEXT_FIELDS = ("text",)


@dataclass(frozen=True)
class Utterance:
    """One row of a manifest: a stretch of audio, with what is known about it."""

    id: str
    audio: str  # a path; "" where a Kaldi utterance names no recording in wav.scp
    text: str
    language: str | None = None  # a code (see `language_code`)
    start: float | None = None  # seconds; None with end: the whole file
    end: float | None = None
    speaker: str | None = None
    channel: int = 0
    recording: str | None = None  # the recording's id: file stem, wav.scp key, MLC-SLM path

    @property
    def duration(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


def language_code(value: object) -> str | None:
    """A manifest's language ("English", "en", "ja_JP") as a code.

    A value we cannot resolve is kept as written rather than dropped: training then counts
    it as an unknown language, and decoding is not silently switched to detection.
    """
    if value is None:
        return None
    text = str(value).strip()
    return (languages.to_code(text) or text) if text else None


def single_token(name: str) -> str:
    """`name` with each run of whitespace made one "_": keyed files (`id text`) split at
    the first whitespace, so an id with a space in it would not read back as itself."""
    return "_".join(name.split()) or "_"


def recording_id(audio: Path, root: Path | None = None) -> str:
    """A recording's default id: its path below `root` without the suffix, parts joined by
    "-" (`English/American/call1.wav` -> `English-American-call1`), else its stem; one
    token (`my call.wav` -> `my_call`)."""
    if root is not None:
        try:
            return single_token("-".join(audio.relative_to(root).with_suffix("").parts))
        except ValueError:
            pass
    return single_token(audio.stem)


def centiseconds(seconds: float) -> str:
    """A time as the MLC-SLM baseline writes it into ids: rounded to 10 ms, times 100, then
    truncated, 6 digits. The float product truncates low at times (21.935 -> 002193,
    0.29 -> 000028); ids must equal the baseline's references, so it is kept as is."""
    return str(int(round(seconds, 2) * 100)).zfill(6)


def segment_id(recording: str, speaker: str | None, start: float, end: float) -> str:
    """An utterance's default id, as the MLC-SLM recipes build it:
    `{recording}-{speaker}-{start in 10 ms, 6 digits}-{end in 10 ms}` (see `centiseconds`),
    so that references built the same way match transcripts by id. One token. Without a
    speaker (a mono recording), `{recording}-{start}-{end}`: none is made up."""
    name = single_token(f"{recording}-{speaker}" if speaker else recording)
    return f"{name}-{centiseconds(start)}-{centiseconds(end)}"


def row_id(row: dict) -> str | None:
    """The id a JSON Lines row gives, under any of `ID_FIELDS`."""
    for name in ID_FIELDS:
        value = row.get(name)
        if value is not None:
            return str(value)
    return None


def row_text(path: str | os.PathLike[str], number: int, row: dict, required: bool = False) -> str:
    """A row's text (under one of `TEXT_FIELDS`): "" when null, or when absent unless
    `required` (a transcript to score: a misnamed field must not score as silence).
    Anything but a string is an error."""
    name = next((n for n in TEXT_FIELDS if n in row), None)
    if name is None:
        if required:
            names = " or ".join(repr(n) for n in TEXT_FIELDS)
            raise SbasrError(
                f"{path}:{number}: no text field; name it {names} (this row has: "
                f"{', '.join(map(repr, row)) or 'no fields'})"
            )
        return ""
    value = row[name]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SbasrError(f"{path}:{number}: {name!r} must be a string")
    return value


def row_language(row: dict) -> str | None:
    """A row's language as written ("language", or NeMo's "lang"), not yet a code."""
    value = row.get("language") or row.get("lang")
    return str(value) if value else None


def read_utterances(source: str | os.PathLike[str]) -> list[Utterance]:
    """Utterances from a JSON Lines manifest, a Kaldi data directory (has wav.scp) or an
    MLC-SLM directory (recordings with `.txt` segment files beside them)."""
    path = Path(source)
    if path.is_file():
        return read_jsonl(path)
    if not path.is_dir():
        raise SbasrError(f"{path}: no such file or directory")
    if is_kaldi_dir(path):
        return read_kaldi(path)
    return read_mlcslm_dir(path)


def read_jsonl(path: str | os.PathLike[str]) -> list[Utterance]:
    """A JSON Lines manifest: `id, audio, start, end, text, language, speaker, channel`, or
    NeMo's `audio_filepath, offset, duration, text, lang`. Relative audio paths are from
    the manifest's folder. A row without an id gets `recording_id` for a whole file and
    `segment_id` for a segment."""
    path = Path(path)
    out = [_jsonl_row(path, number, row) for number, row in jsonl_rows(path, read_text(path))]
    if not out:
        raise SbasrError(f"{path}: the manifest is empty")
    return out


def _jsonl_row(path: Path, number: int, row: dict) -> Utterance:
    where = f"{path}:{number}"
    audio = row.get("audio", row.get("audio_filepath"))
    if not audio or not isinstance(audio, str):
        raise SbasrError(f"{where}: no 'audio' (or 'audio_filepath') field")
    if "\0" in audio:
        raise SbasrError(f"{where}: the audio path has a NUL character")
    audio_path = Path(audio) if Path(audio).is_absolute() else path.parent / audio
    start = _number(where, row, "start", "offset")
    end = _number(where, row, "end")
    duration = _number(where, row, "duration")
    if end is None and start is not None and duration is not None:
        end = start + duration
    if start is None and end is not None:
        start = 0.0
    if start is not None and end is None:
        raise SbasrError(f"{where}: a start time needs an 'end' (or a 'duration')")
    if start is not None and end is not None:
        check_times(where, start, end)
    speaker = row.get("speaker")
    speaker = None if speaker is None else str(speaker)
    channel = _channel(where, row.get("channel"))
    rec = recording_id(audio_path)
    uid = row_id(row)
    if uid is not None and single_token(uid) != uid:
        raise SbasrError(f"{where}: id {uid!r} is not one token (keyed files split at spaces)")
    if uid is None:
        uid = rec if start is None or end is None else segment_id(rec, speaker, start, end)
    return Utterance(
        uid,
        str(audio_path),
        row_text(path, number, row),
        language_code(row_language(row)),
        start,
        end,
        speaker,
        channel,
        rec,
    )


def _number(where: str, row: dict, *names: str) -> float | None:
    for name in names:
        value = row.get(name)
        if value is None:
            continue
        if isinstance(value, bool):
            raise SbasrError(f"{where}: {name!r} must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SbasrError(f"{where}: {name!r} must be a number, not {value!r}") from None
        if not math.isfinite(number):  # "nan" and NaN parse, and pass every comparison
            raise SbasrError(f"{where}: {name!r} must be a finite number, not {value!r}")
        return number
    return None


def _channel(where: str, value: object) -> int:
    """A row's channel: a whole number from 0 (a string of one too); absent is 0."""
    if value is None:
        return 0
    try:
        number = None if isinstance(value, bool) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = None
    if number is None or not number.is_integer() or number < 0:
        raise SbasrError(f"{where}: 'channel' must be a whole number from 0, not {value!r}")
    return int(number)


def check_times(where: str, start: float, end: float) -> None:
    """A segment's times, in seconds: finite, start from 0, end after start. `where` is
    the `file:line` the error names."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise SbasrError(f"{where}: segment times must be finite numbers ({start}, {end})")
    if start < 0:
        raise SbasrError(f"{where}: segment starts before 0 (start {start:g} s)")
    if end <= start:
        raise SbasrError(
            f"{where}: segment ends before it starts (start {start:g} s, end {end:g} s)"
        )


def is_kaldi_dir(path: Path) -> bool:
    return (path / "wav.scp").is_file()


def read_kaldi(root: str | os.PathLike[str]) -> list[Utterance]:
    """A Kaldi data directory: `wav.scp`, and as far as present `text`, `segments`,
    `utt2lang` and `utt2spk`. Utterances are those of `text`, else of `segments`, else
    every recording of wav.scp as a whole. Relative audio paths are from the directory."""
    root = Path(root)
    wavs = _kaldi_table(root / "wav.scp")
    nul = next((k for k, v in wavs.items() if "\0" in k + v), None)
    if nul is not None:
        raise SbasrError(f"{root / 'wav.scp'}: the line of {nul!r} has a NUL character")
    pipes = [k for k, v in wavs.items() if v.endswith("|")]
    if pipes:
        raise SbasrError(f"{root / 'wav.scp'}: command pipes are not supported ({pipes[0]})")
    texts = _kaldi_table(root / "text")
    langs, speakers = _kaldi_table(root / "utt2lang"), _kaldi_table(root / "utt2spk")
    segments: dict[str, tuple[str, float, float]] = {}
    seg_path = root / "segments"
    if seg_path.is_file():
        for number, line in enumerate(read_text(seg_path).splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                rec, start, end = parts[1], float(parts[2]), float(parts[3])
            except (IndexError, ValueError):
                raise SbasrError(f"{seg_path}:{number}: expected 'utt rec start end'") from None
            if len(parts) != 4:
                raise SbasrError(f"{seg_path}:{number}: expected 'utt rec start end'")
            check_times(f"{seg_path}:{number}", start, end)
            segments[parts[0]] = (rec, start, end)
    ids = list(texts if texts else segments if segments else wavs)
    out = []
    for uid in ids:
        rec, start, end = segments.get(uid, (uid, None, None))
        audio = wavs.get(rec, "")
        audio_path = Path(audio) if not audio or Path(audio).is_absolute() else root / audio
        out.append(
            Utterance(
                uid,
                str(audio_path) if audio else "",
                texts.get(uid, ""),
                language_code(langs.get(uid)),
                start,
                end,
                speakers.get(uid),
                0,
                rec,
            )
        )
    if not out:
        raise SbasrError(f"{root / 'wav.scp'}: no recordings")
    return out


def _kaldi_table(path: Path) -> dict[str, str]:
    """`key value...` per line; a key alone has an empty value (an empty transcript)."""
    if not path.is_file():
        return {}
    rows = {}
    for line in read_text(path).splitlines():
        parts = line.split(maxsplit=1)
        if parts:
            rows[parts[0]] = parts[1].strip() if len(parts) == 2 else ""
    return rows


def find_audio(root: Path) -> list[Path]:
    """The audio files below `root`, in path order; none is an error. Only regular files
    count: a FIFO or device named like audio is left out (see `irregular_audio`), as
    reading one would block."""
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not found:
        raise SbasrError(f"{root}: no audio files in this directory")
    return found


def irregular_audio(root: Path) -> list[Path]:
    """What `find_audio` leaves out below `root`: names of audio files that are not
    regular files (FIFOs, devices, sockets), in path order."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES and not p.is_file() and not p.is_dir() and p.exists()
    )


def read_mlcslm_dir(root: str | os.PathLike[str]) -> list[Utterance]:
    """An MLC-SLM directory: every audio file below `root` with its segment file
    (`<audio>.txt`) beside it. A recording's id is its path below `root`
    (`recording_id`), and its language the first path part that names one
    (`English/American/...`)."""
    root = Path(root)
    out = []
    for audio in find_audio(root):
        rec = recording_id(audio, root)
        out += read_mlcslm_file(audio, rec, path_language(audio, root))
    return out


def read_mlcslm_file(
    audio: str | os.PathLike[str], recording: str, language: str | None = None
) -> list[Utterance]:
    """The segments of one recording from its MLC-SLM segment file (`<audio>.txt`):
    `start end speaker [text]` per line, times in seconds, ids by `segment_id`."""
    audio = Path(audio)
    seg_path = audio.with_suffix(".txt")
    if not seg_path.is_file():
        raise SbasrError(f"{audio}: no MLC-SLM segment file {seg_path.name} beside it")
    out = []
    for number, line in enumerate(read_text(seg_path).splitlines(), 1):
        parts = line.split(maxsplit=3)
        if not parts:
            continue
        try:
            start, end, speaker = float(parts[0]), float(parts[1]), parts[2]
        except (ValueError, IndexError):
            raise SbasrError(f"{seg_path}:{number}: expected 'start end speaker [text]'") from None
        check_times(f"{seg_path}:{number}", start, end)
        text = parts[3] if len(parts) == 4 else ""
        uid = segment_id(recording, speaker, start, end)
        out.append(Utterance(uid, str(audio), text, language, start, end, speaker, 0, recording))
    return out


def path_language(audio: Path, root: Path) -> str | None:
    """The language the first folder (or file name) below `root` names, MLC-SLM style.

    Only language names and the codes we know count: a folder called `raw` or `dev` is
    not a language.
    """
    try:
        parts = audio.relative_to(root).with_suffix("").parts
    except ValueError:
        parts = (audio.stem,)
    return next((c for c in map(languages.from_key, parts) if c), None)
