"""Cutting recordings into the spans an engine decodes: by voice activity (Silero VAD, as
faster-whisper ships it) or by oracle segments given with the data."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from ..errors import SbasrError
from ..io.audio import SAMPLE_RATE
from ..io.files import read_text

MAX_SPAN = 30.0  # seconds: Whisper's window, and the Speech-LLM's batching unit
_VAD_CHUNK = 600  # seconds of audio given to the VAD at once


@dataclass(frozen=True)
class Span:
    """A stretch of one channel to decode, in seconds from the start of the recording."""

    start: float
    end: float
    channel: int = 0
    speaker: str | None = None
    id: str | None = None  # the utterance id of an oracle segment
    language: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def samples(self, audio: np.ndarray) -> np.ndarray:
        """This span's stretch of `audio` (one channel, 16 kHz)."""
        return audio[int(self.start * SAMPLE_RATE) : int(self.end * SAMPLE_RATE)]


def vad_spans(
    audio: np.ndarray, channel: int = 0, speaker: str | None = None, max_gap: float = 1.0
) -> list[Span]:
    """Speech regions of one channel, merged while the gap is short and the span stays
    within 30 s, so that silence (where Whisper invents text) is left out but short turns
    keep their context."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        min_silence_duration_ms=500, speech_pad_ms=200, max_speech_duration_s=MAX_SPAN
    )
    spans: list[Span] = []
    # Ten minutes at a time: Silero over a whole hour at once needs gigabytes.
    step = _VAD_CHUNK * SAMPLE_RATE
    for offset in range(0, len(audio), step):
        for region in get_speech_timestamps(audio[offset : offset + step], options):
            start = (offset + region["start"]) / SAMPLE_RATE
            end = (offset + region["end"]) / SAMPLE_RATE
            if spans and start - spans[-1].end <= max_gap and end - spans[-1].start <= MAX_SPAN:
                spans[-1] = replace(spans[-1], end=end)
            else:
                spans.append(Span(start, end, channel, speaker))
    return spans


@dataclass(frozen=True)
class MlcslmLine:
    """One line of an MLC-SLM segment file, with its utterance id."""

    id: str
    start: float
    end: float
    speaker: str
    text: str


def mlcslm_lines(path: str | os.PathLike[str], recording_id: str) -> list[MlcslmLine]:
    """An MLC-SLM segment file: `start end speaker [text]` per line, times in seconds.

    Utterance ids follow the challenge recipes: `{recording}-{speaker}-{start*100:06d}-
    {end*100:06d}`, so the transcripts score against references built the same way.
    """
    out = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split(maxsplit=3)
        if not parts:
            continue
        try:
            start, end, speaker = float(parts[0]), float(parts[1]), parts[2]
        except (ValueError, IndexError):
            raise SbasrError(f"{path}:{number}: expected 'start end speaker [text]'") from None
        if end <= start:
            raise SbasrError(f"{path}:{number}: segment ends before it starts")
        uid = f"{recording_id}-{speaker}-{round(start * 100):06d}-{round(end * 100):06d}"
        out.append(MlcslmLine(uid, start, end, speaker, parts[3] if len(parts) == 4 else ""))
    return out


def read_mlcslm_segments(path: str | os.PathLike[str], recording_id: str) -> list[Span]:
    """The oracle spans of an MLC-SLM segment file."""
    return [Span(x.start, x.end, 0, x.speaker, x.id) for x in mlcslm_lines(path, recording_id)]


def split_long(spans: list[Span]) -> list[Span]:
    """Oracle segments over 30 s cut into equal parts (the reference system silently
    dropped utterances over 15 s; nothing is dropped here)."""
    out = []
    for span in spans:
        parts = max(1, int(np.ceil(span.duration / MAX_SPAN)))
        if parts == 1:
            out.append(span)
            continue
        step = span.duration / parts
        out += [
            replace(span, start=span.start + i * step, end=span.start + (i + 1) * step)
            for i in range(parts)
        ]
    return out
