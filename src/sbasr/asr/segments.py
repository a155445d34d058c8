"""Cutting recordings into the spans an engine decodes: by voice activity (Silero VAD, as
faster-whisper ships it) or by oracle segments given with the data."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..core.constants import SAMPLE_RATE, WINDOW_SECONDS

MAX_SPAN = WINDOW_SECONDS  # the longest span decoded at once
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


def split_long(spans: list[Span], audio: np.ndarray | None = None) -> list[Span]:
    """Oracle segments over 30 s cut where the speaker pauses (VAD inside the segment),
    else into equal parts: a cut through a word loses it on both sides. The reference
    system silently dropped utterances over 15 s; nothing is dropped here."""
    out = []
    for span in spans:
        if span.duration <= MAX_SPAN:
            out.append(span)
            continue
        pieces = vad_spans(span.samples(audio)) if audio is not None else []
        if pieces:
            out += [
                replace(span, start=span.start + p.start, end=span.start + p.end) for p in pieces
            ]
            continue
        parts = int(np.ceil(span.duration / MAX_SPAN))
        step = span.duration / parts
        out += [
            replace(span, start=span.start + i * step, end=span.start + (i + 1) * step)
            for i in range(parts)
        ]
    return out
