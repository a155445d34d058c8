"""The transcription pipeline: audio -> spans -> engine -> timed, attributed segments.

Channel handling and segmentation live here, the recogniser in `sbasr.asr.engines`, the
output formats in `sbasr.asr.writers`, the public `transcribe()` in `sbasr.asr.api`.
"""

from __future__ import annotations

import heapq
import itertools
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..core.errors import SbasrError
from ..io.audio import Audio, load_audio
from ..io.manifests import language_code, segment_id
from .engines.base import Decoded, Engine, Word
from .inputs import Recording
from .options import (
    DecodeOptions,
    TranscribeOptions,
)
from .segments import Span, split_long, vad_spans


@dataclass
class Segment:
    """One transcribed stretch of speech."""

    id: str  # utterance id: the oracle segment's, else recording-speaker-start-end
    recording: str
    start: float
    end: float
    text: str
    speaker: str | None = None
    channel: int = 0
    language: str | None = None
    words: list[Word] = field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None

    def __post_init__(self) -> None:
        self.start, self.end = round(self.start, 3), round(self.end, 3)

    def to_dict(self) -> dict:
        return asdict(self)


def transcribe_recording(
    rec: Recording,
    engine: Engine,
    options: TranscribeOptions,
    audio: Audio | None = None,
    spans: list[list[Span]] | None = None,
) -> Iterator[Segment]:
    """One recording's segments, channels merged in time order.

    A whole-file manifest row (`rec.utterance`) gives one segment named by its id.

    Args:
        rec: The recording.
        engine: The engine that decodes it.
        options: How it is cut and decoded.
        audio: Its audio, when already loaded.
        spans: Each channel's spans, when `recording_spans` was already run.

    Yields:
        The segments.

    Raises:
        SbasrError: The audio cannot be read, or the engine fails on a span.
    """
    if audio is None:
        audio = load_audio(rec.path, split_channels=needs_split(rec, options))
    if spans is None:
        spans = recording_spans(rec, audio, options)
    streams = [
        _channel_segments(
            rec, engine, samples, chosen, options, [s for other in spans for s in other]
        )
        for samples, chosen in zip(audio.channels, spans)
        if chosen
    ]
    yield from join_channels(rec, streams, audio.duration)


def recording_spans(rec: Recording, audio: Audio, options: TranscribeOptions) -> list[list[Span]]:
    """What to decode of each channel: its oracle segments (long ones cut at pauses), else
    its speech by VAD; a problem with the segments is an error or a warning first."""
    _check_spans(rec, audio)
    out = []
    for index, samples in enumerate(audio.channels):
        if rec.spans is not None:
            out.append(split_long([s for s in rec.spans if s.channel == index], samples))
        else:
            speaker = _speaker_label(index) if len(audio.channels) > 1 else None
            out.append(vad_spans(samples, channel=index, speaker=speaker, max_gap=_gap(options)))
    return out


def _gap(options: TranscribeOptions) -> float:
    """The longest pause VAD regions are merged across. Prompted with hotwords, Whisper
    writes no timestamps, so a span of several turns would come out as one segment: each
    region is then a span of its own, decoded with no text before it but the hotwords
    (Whisper, prompted with one turn, writes it again for the next)."""
    return 0.0 if getattr(options.decode, "hotwords", None) else 1.0


def join_channels(
    rec: Recording, streams: Iterable[Iterable[Segment]], duration: float
) -> Iterator[Segment]:
    """Each channel's segments merged in time order; one segment for a manifest row."""
    merged = heapq.merge(*streams, key=lambda s: (s.start, s.channel))
    if rec.utterance:
        yield _join_utterance(rec, merged, duration)
    else:
        yield from merged


# Oracle segments may end this far past the audio (rounded times) without a warning.
_END_SLACK = 0.5


def _check_spans(rec: Recording, audio: Audio) -> None:
    """A segment on a channel the audio lacks is an error; segments past the end of the
    audio (wrong times, or a truncated file) are a warning naming the first of them:
    their text is cut short or empty, which must not pass unnoticed."""
    for span in rec.spans or []:
        if span.channel >= len(audio.channels):
            raise SbasrError(
                f"{rec.path}: segment {span.id or span.start} is on channel {span.channel}, "
                f"but the audio has {len(audio.channels)}"
            )
    late = [s for s in rec.spans or [] if s.end > audio.duration + _END_SLACK]
    if late:
        first = late[0]
        what = f"segment {first.id or first.start} ({first.start:.2f}-{first.end:.2f} s)"
        what += f" and {len(late) - 1} more run" if len(late) > 1 else " runs"
        whose = "their" if len(late) > 1 else "its"
        warnings.warn(
            f"{rec.path}: {what} past the end of the audio at {audio.duration:.2f} s: {whose} "
            "text is cut short or empty (wrong times, or a truncated file?)",
            UserWarning,
            stacklevel=3,
        )


def needs_split(rec: Recording, options: TranscribeOptions) -> bool:
    """Whether to keep channels apart: asked for, or oracle segments name a channel."""
    return options.channels == "split" or any(s.channel > 0 for s in rec.spans or [])


def _speaker_label(channel: int) -> str:
    return chr(ord("A") + channel) if channel < 26 else f"ch{channel}"


def _channel_segments(
    rec: Recording,
    engine: Engine,
    audio: np.ndarray,
    spans: list[Span],
    options: TranscribeOptions,
    every: list[Span] | None = None,
) -> Iterator[Segment]:
    """One channel's segments; `every`: the spans of all the recording's channels."""
    languages = span_languages(rec, engine, audio, spans, options)
    if getattr(options.decode, "condition_on_previous_text", False):
        groups = context_runs(spans, languages, every or spans, _gap(options))
    else:  # no text carries over: each language's spans in one call
        by_lang: dict[str, list[int]] = {}
        for i, lang in enumerate(languages):
            if lang is not None:
                by_lang.setdefault(lang, []).append(i)
        groups = list(by_lang.values())
    streams = []
    for indices in groups:
        lang = languages[indices[0]]
        opts = span_options(rec, spans, options, lang)
        chosen = [spans[i] for i in indices]
        streams.append(_attributed(indices, engine.decode(audio, chosen, opts), lang))
    merged = heapq.merge(*streams, key=lambda s: s[1].start)
    yield from join_spans(rec, spans, merged)


def context_runs(
    spans: list[Span], languages: list[str | None], every: list[Span], gap: float = 1.0
) -> list[list[int]]:
    """One channel's spans (indices, in order) in runs of one speaker's contiguous speech,
    the only stretches where a span is decoded with the text before it as its prompt.

    A run ends at a pause over `gap` seconds (the pause VAD merges regions across), a
    change of language or speaker, an overlap with the span before, and wherever another
    channel's span (of `every`) lies between the two or overlaps the later one: a short
    answer after a long prompt must not be prompted with it, or Whisper writes the
    prompt's sentence again. Spans without a language (no audio) are in no run.

    Args:
        spans: One channel's spans, in time order.
        languages: Each span's decoding language, None for one not decoded.
        every: The spans of every channel of the recording (this one's included).
        gap: The longest pause within one run.

    Returns:
        Lists of indices into `spans`, each decoded in one call.
    """
    runs: list[list[int]] = []
    last: int | None = None
    for i, span in enumerate(spans):
        if languages[i] is None:
            continue
        if last is not None:
            prev = spans[last]
            other = any(
                o.channel != span.channel and o.start < span.end and o.end > prev.end for o in every
            )
            joined = (
                languages[last] == languages[i]
                and prev.speaker == span.speaker
                and prev.end <= span.start <= prev.end + gap
                and not other
            )
            if joined:
                runs[-1].append(i)
                last = i
                continue
        runs.append([i])
        last = i
    return runs


def span_languages(
    rec: Recording, engine: Engine, audio: np.ndarray, spans: list[Span], options: TranscribeOptions
) -> list[str | None]:
    """The language each span of one channel is decoded in: the user's, the manifest
    row's, the oracle segment's, else detected; None for a span with no audio (past the
    end of the file, warned about), which is not decoded.

    Detected, the channel's language is that of its longest span, and every other span's
    is detected too: a span takes its own language where the detection is sure of it
    (`SWITCH_PROBABILITY`), so that a call that changes language is not decoded (and
    translated) in one; with `language_per_segment`, each span takes its own whatever
    the detection's confidence."""
    decode = options.decode
    fixed = language_code(decode.language or rec.language)  # the user's, or the manifest row's
    out: list[str | None] = []
    detected: dict[int, tuple[str, float]] = {}
    for i, span in enumerate(spans):
        if not len(span.samples(audio)):  # past the end of the audio (warned): no text
            out.append(None)
        elif fixed:
            out.append(fixed)
        elif span.language:  # an oracle segment's own language
            out.append(language_code(span.language))
        else:
            detected[i] = engine.detect_language(span.samples(audio))
            out.append(detected[i][0])
    if detected and not options.language_per_segment:
        longest = max(range(len(spans)), key=lambda i: len(spans[i].samples(audio)))
        channel = (detected.get(longest) or engine.detect_language(spans[longest].samples(audio)))[
            0
        ]
        for i, (own, probability) in detected.items():
            out[i] = own if probability >= SWITCH_PROBABILITY else channel
    return out


# How sure the language detection must be of a span's language for the span to leave its
# channel's language.
SWITCH_PROBABILITY = 0.5


def span_options(
    rec: Recording, spans: list[Span], options: TranscribeOptions, language: str | None
) -> DecodeOptions:
    """The decoding options of one channel's spans in `language`."""
    decode = options.decode
    # One segment per oracle span or manifest row: timestamp tokens would be dropped.
    oracle = spans[0].id is not None or rec.utterance
    return replace(decode, language=language, timestamps=decode.timestamps and not oracle)


def _attributed(
    indices: list[int], decoded: Iterator[Decoded], language: str | None
) -> Iterator[tuple[int, Decoded]]:
    """Engine output keyed by the index of its span in the channel's list."""
    for d in decoded:
        d.language = d.language or language
        yield indices[d.span], d


def join_spans(
    rec: Recording, spans: list[Span], decoded: Iterable[tuple[int, Decoded]]
) -> Iterator[Segment]:
    """VAD spans give one segment per decoded piece; an oracle segment gives exactly one
    segment, its pieces joined, so that its id appears once (and an empty one too).

    A VAD span decoded as one piece is named by the span's own times, whatever times the
    engine gave the text, so that every engine names it alike and hypotheses join by
    key; a span the engine cut into several pieces names each by the piece's times."""
    if not spans or spans[0].id is None:
        held: list[tuple[int, Decoded]] = []
        end: list[tuple[int, Decoded | None]] = [(-1, None)]  # flushes the last span
        heard: set[int] = set()
        for index, d in itertools.chain(decoded, end):
            heard.add(index)
            if held and index != held[0][0]:
                span = spans[held[0][0]]
                for _, piece in held:
                    times = (span.start, span.end) if len(held) == 1 else (piece.start, piece.end)
                    yield Segment(
                        segment_id(rec.id, span.speaker, *times),
                        rec.id,
                        piece.start,
                        piece.end,
                        piece.text,
                        span.speaker,
                        span.channel,
                        piece.language,
                        piece.words,
                        piece.avg_logprob,
                        piece.no_speech_prob,
                    )
                held = []
            if d is not None:
                held.append((index, d))
        _warn_unheard(rec, [s for i, s in enumerate(spans) if i not in heard])
        return
    pieces: dict[str, list[Decoded]] = {}
    for index, d in decoded:
        pieces.setdefault(spans[index].id or "", []).append(d)
    done: set[str] = set()
    for span in spans:  # oracle order; long segments were split into parts with one id
        uid = span.id or ""
        if uid in done:
            continue
        done.add(uid)
        parts = pieces.get(uid, [])
        # The row's own times, not its pieces': a long row was cut at its pauses.
        whole = [s for s in rec.spans or spans if s.id == uid] or [span]
        text = " ".join(p.text.strip() for p in parts if p.text.strip())
        probs = [p.avg_logprob for p in parts if p.avg_logprob is not None]
        yield Segment(
            uid,
            rec.id,
            whole[0].start,
            whole[-1].end,
            text,
            span.speaker,
            span.channel,
            parts[0].language if parts else span.language,
            [w for p in parts for w in p.words],
            float(np.mean(probs)) if probs else None,
            max((p.no_speech_prob or 0.0) for p in parts) if parts else None,
        )


# Speech this long (seconds) that comes out with no text is warned about.
_UNHEARD = 2.0


def _warn_unheard(rec: Recording, spans: list[Span]) -> None:
    """A warning naming the stretches of speech of `_UNHEARD` s or more that gave no text:
    speech is never dropped silently (decoded in the wrong language, Whisper may write
    nothing)."""
    long = [s for s in spans if s.duration >= _UNHEARD]
    if not long:
        return
    first = long[0]
    where = f"{first.start:.1f}-{first.end:.1f} s" + (
        f", speaker {first.speaker}" if first.speaker else ""
    )
    more = f" and {len(long) - 1} more" if len(long) > 1 else ""
    warnings.warn(
        f"{rec.path}: no text for speech at {where}{more}: if it is in another language, "
        "transcribe with --language-per-segment or --language",
        UserWarning,
        stacklevel=3,
    )


def _join_utterance(rec: Recording, segments: Iterable[Segment], duration: float) -> Segment:
    """A whole-file manifest row as one segment named by its id: every piece of every
    channel in time order, over the whole file (a row without speech keeps its id, with
    no text), so that scoring against the same manifest finds each hypothesis."""
    parts = list(segments)
    speakers = {p.speaker for p in parts}
    probs = [p.avg_logprob for p in parts if p.avg_logprob is not None]
    return Segment(
        rec.id,
        rec.id,
        0.0,
        duration,
        " ".join(p.text.strip() for p in parts if p.text.strip()),
        speakers.pop() if len(speakers) == 1 else None,
        parts[0].channel if parts else 0,
        parts[0].language if parts else language_code(rec.language),
        [w for p in parts for w in p.words],
        float(np.mean(probs)) if probs else None,
        max((p.no_speech_prob or 0.0) for p in parts) if parts else None,
    )
