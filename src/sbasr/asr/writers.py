"""Output formats, one writer class per format. Each renders a recording's segments to text;
files are written atomically, so an interrupted batch leaves whole files or none."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

from faster_whisper.utils import format_timestamp

from ..core.errors import SbasrError
from ..io.files import write_atomic
from .pipeline import Segment


class Writer:
    extension: ClassVar[str]

    def render(self, segments: list[Segment], recording: str, audio: str, duration: float) -> str:
        raise NotImplementedError

    def write(
        self,
        path: str | os.PathLike[str],
        segments: list[Segment],
        recording: str,
        audio: str,
        duration: float,
    ) -> Path:
        return write_atomic(path, self.render(segments, recording, audio, duration))


def _who(seg: Segment) -> str:
    return f"{seg.speaker}: " if seg.speaker else ""


def _clock(seconds: float, decimal: str) -> str:
    """HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (WebVTT), hours always shown."""
    return format_timestamp(seconds, always_include_hours=True, decimal_marker=decimal)


class TxtWriter(Writer):
    """One line per segment, with the speaker where channels or oracle segments give one."""

    extension = "txt"

    def render(self, segments, recording, audio, duration):
        return "".join(f"{_who(s)}{s.text}\n" for s in segments)


class SrtWriter(Writer):
    extension = "srt"

    def render(self, segments, recording, audio, duration):
        blocks = [
            f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{_who(s)}{s.text}\n"
            for i, s in enumerate(segments, 1)
        ]
        return "\n".join(blocks)


class VttWriter(Writer):
    extension = "vtt"

    def render(self, segments, recording, audio, duration):
        blocks = ["WEBVTT\n"]
        for s in segments:
            voice = f"<v {s.speaker}>" if s.speaker else ""
            blocks.append(f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{voice}{s.text}\n")
        return "\n".join(blocks)


class JsonWriter(Writer):
    """Everything: times, speaker, channel, language, words and decoder confidences."""

    extension = "json"

    def render(self, segments, recording, audio, duration):
        doc = {
            "recording": recording,
            "audio": audio,
            "duration": round(duration, 3),
            "segments": [s.to_dict() for s in segments],
        }
        return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


class TsvWriter(Writer):
    extension = "tsv"

    def render(self, segments, recording, audio, duration):
        rows = ["start\tend\tspeaker\tchannel\tlanguage\ttext"]
        for s in segments:
            text = s.text.replace("\t", " ")
            rows.append(
                f"{s.start:.3f}\t{s.end:.3f}\t{s.speaker or ''}\t{s.channel}\t"
                f"{s.language or ''}\t{text}"
            )
        return "\n".join(rows) + "\n"


class KeyedWriter(Writer):
    """`utt_id text` per segment: what `sbasr score` reads (and Kaldi, meeteval)."""

    extension = "keyed"

    def render(self, segments, recording, audio, duration):
        return "".join(
            f"{s.id} {' '.join(s.text.split())}\n".replace(" \n", "\n") for s in segments
        )


WRITERS: dict[str, type[Writer]] = {
    w.extension: w for w in (TxtWriter, SrtWriter, VttWriter, JsonWriter, TsvWriter, KeyedWriter)
}


# Formats whose renderings of several recordings, one after another, are still one valid
# stream (a line per segment): what `-o -` writes for any number of recordings.
STREAM_FORMATS = ("txt", "keyed")


def writers_for(fmt: str) -> list[Writer]:
    return [cls() for cls in WRITERS.values()] if fmt == "all" else [WRITERS[fmt]()]


def check_stdout(fmt: str, recordings: int) -> None:
    """Whether `fmt` can go to standard output (`-o -`) for `recordings` recordings: txt and
    keyed always; srt, vtt, json and tsv are one document per recording, so only for one;
    `all` never (six files per recording). An SbasrError says what to do instead."""
    if fmt == "all":
        raise SbasrError("-o -: --format all writes six files per recording: give an --output-dir")
    if fmt not in STREAM_FORMATS and recordings > 1:
        raise SbasrError(
            f"-o -: --format {fmt} is one document per recording and {recordings} recordings "
            f"were given: use --format {' or '.join(STREAM_FORMATS)} for one stream, or an "
            "--output-dir"
        )
