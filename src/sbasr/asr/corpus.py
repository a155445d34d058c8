"""Transcribing many recordings at once: spans of different recordings share batches.

A test set of one-utterance files decodes one utterance at a time when batches are made
within each recording; here the spans of every recording in a look-ahead window are
grouped by language and options, sorted by length and decoded in batches of
`--batch-size`. Audio is decoded (and cut by VAD) on a background thread, a bounded
amount ahead, and each recording's segments come out whole, in input order, once all of
its spans are decoded: memory stays bounded however long the list is.

With a batch size of 1 (Whisper's default), recordings are decoded one by one:
Whisper then prompts each span with the text before it, which batching cannot.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import SbasrError
from ..io.audio import Audio, load_audio
from .engines.base import Decoded, Engine, decode_clips
from .inputs import Recording
from .options import TranscribeOptions
from .pipeline import (
    Segment,
    join_channels,
    join_spans,
    needs_split,
    recording_spans,
    span_languages,
    span_options,
    transcribe_recording,
)
from .segments import Span

# Audio decoded ahead of the decoder at most (bytes of float32 samples; one recording
# always, however long): some 500 short files, ample to keep a decoder fed.
_AHEAD_BYTES = 64 * 2**20


@dataclass
class Outcome:
    """One recording done: its segments, or the one-line reason it failed."""

    index: int  # its position in the list given
    recording: Recording
    segments: list[Segment] = field(default_factory=list)
    duration: float = 0.0
    error: str | None = None


def transcribe_many(
    recordings: list[Recording],
    engine: Engine,
    options: TranscribeOptions,
    window: int | None = None,
) -> Iterator[Outcome]:
    """Every recording's outcome, in the order given.

    A failure (bad audio, an engine error on one of its spans) is that recording's outcome,
    and the rest go on. With `options.decode.batch_size` over 1, the spans of up to `window`
    recordings wait together and are batched across recordings.

    Args:
        recordings: The recordings.
        engine: The engine that decodes them.
        options: How they are cut and decoded.
        window: Recordings whose spans are batched together; None: 16 batches' worth.

    Yields:
        One outcome per recording: its segments, or its error.
    """
    loaded = _Loader(recordings, options)
    try:
        if (options.decode.batch_size or 1) > 1:
            batch = options.decode.batch_size or 1
            yield from _Batcher(engine, options, batch, window or 16 * batch).run(loaded)
        else:
            for index, rec, audio, spans, error in loaded:
                yield _one_by_one(index, rec, audio, spans, error, engine, options)
    finally:
        loaded.stop()


def _one_by_one(index, rec, audio, spans, error, engine, options) -> Outcome:
    if error is not None:
        return Outcome(index, rec, error=error)
    try:
        segments = list(transcribe_recording(rec, engine, options, audio, spans))
    except Exception as e:  # one broken file must not stop the batch
        return Outcome(index, rec, error=failure(rec, e))
    return Outcome(index, rec, segments, audio.duration)


def failure(rec: Recording, error: Exception) -> str:
    """The one line a failed recording is reported with."""
    if isinstance(error, SbasrError):
        return str(error).splitlines()[0]
    return f"{rec.path}: {type(error).__name__}: {error}".splitlines()[0]


class _Loader:
    """Audio and spans of each recording, decoded on a background thread a bounded
    amount ahead of the caller; iterating gives (index, recording, audio, spans, error)."""

    def __init__(self, recordings: list[Recording], options: TranscribeOptions) -> None:
        self.recordings, self.options = recordings, options
        self.items: queue.Queue = queue.Queue()
        self.room = threading.Condition()
        self.ahead = 0  # bytes decoded and not yet taken
        self.stopped = False
        self.thread = threading.Thread(target=self._work, name="sbasr-audio", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        for index, rec in enumerate(self.recordings):
            with self.room:
                self.room.wait_for(lambda: self.stopped or self.ahead < _AHEAD_BYTES)
                if self.stopped:
                    return
            try:
                audio = load_audio(rec.path, split_channels=needs_split(rec, self.options))
                spans = recording_spans(rec, audio, self.options)
                size = sum(c.nbytes for c in audio.channels)
                item = (index, rec, audio, spans, None)
            except Exception as e:
                size, item = 0, (index, rec, None, None, failure(rec, e))
            with self.room:
                self.ahead += size
            self.items.put((size, item))
        self.items.put(None)

    def __iter__(self) -> Iterator[tuple[int, Recording, Audio, list[list[Span]], str | None]]:
        while (got := self.items.get()) is not None:
            size, item = got
            with self.room:
                self.ahead -= size
                self.room.notify()
            yield item

    def stop(self) -> None:
        with self.room:
            self.stopped = True
            self.room.notify()


@dataclass
class _Job:
    """One span to decode: which recording and channel, its index there, and its audio."""

    slot: int
    channel: int
    span: int
    clip: np.ndarray
    waited: bool = False  # left over from a round already: decoded in the next one


@dataclass
class _Pending:
    """A recording with spans still being decoded."""

    outcome: Outcome
    audio: Audio
    spans: list[list[Span]]
    decoded: list[list[tuple[int, Decoded]]]
    left: int = 0


class _Batcher:
    """Spans of many recordings in shared batches; outcomes in input order."""

    def __init__(self, engine: Engine, options: TranscribeOptions, batch: int, window: int) -> None:
        self.engine, self.options, self.batch, self.window = engine, options, batch, window
        self.waiting: dict[str, tuple[object, list[_Job]]] = {}  # by options: spans to decode
        self.pending: dict[int, _Pending] = {}
        self.done: dict[int, Outcome] = {}
        self.next = 0  # index of the next outcome to give

    def run(self, loaded: _Loader) -> Iterator[Outcome]:
        items = iter(loaded)
        exhausted = False
        while True:
            while not exhausted and self._count() < self.window:
                item = next(items, None)
                if item is None:
                    exhausted = True
                else:
                    self._admit(*item)
            self._decode_round(final=exhausted)
            yield from self._ready()
            if exhausted and not self.waiting:
                break
        for slot in list(self.pending):  # an engine that gave fewer results than clips
            self._fail(
                slot, SbasrError(f"{self.pending[slot].outcome.recording.path}: not decoded")
            )
        yield from self._ready()

    def _count(self) -> int:
        return sum(len(jobs) for _, jobs in self.waiting.values())

    def _admit(self, index, rec, audio, spans, error) -> None:
        if error is not None:
            self.done[index] = Outcome(index, rec, error=error)
            return
        outcome = Outcome(index, rec, duration=audio.duration)
        state = _Pending(outcome, audio, spans, [[] for _ in spans])
        try:
            jobs = []
            for channel, (samples, chosen) in enumerate(zip(audio.channels, spans)):
                if not chosen:
                    continue
                langs = span_languages(rec, self.engine, samples, chosen, self.options)
                for i, (span, lang) in enumerate(zip(chosen, langs)):
                    if lang is None:
                        continue
                    opts = span_options(rec, chosen, self.options, lang)
                    jobs.append((repr(opts), opts, _Job(index, channel, i, span.samples(samples))))
        except Exception as e:
            self.done[index] = Outcome(index, rec, error=failure(rec, e))
            return
        state.left = len(jobs)
        self.pending[index] = state
        for key, opts, job in jobs:
            self.waiting.setdefault(key, (opts, []))[1].append(job)
        if not jobs:
            self._finish(index)

    def _decode_round(self, final: bool) -> None:
        """Decode the full batches of each kind of span, shortest first; a short batch
        waits for one more round (unless no more spans come), so that it can fill up."""
        for key in list(self.waiting):
            opts, jobs = self.waiting[key]
            jobs = [j for j in jobs if j.slot in self.pending]  # a failed recording's: dropped
            jobs.sort(key=lambda j: len(j.clip))
            full = len(jobs) // self.batch * self.batch
            if final or any(j.waited for j in jobs[full:]):
                full = len(jobs)
            for first in range(0, full, self.batch):
                self._decode(jobs[first : first + self.batch], opts)
            rest = jobs[full:]
            for job in rest:
                job.waited = True
            if rest:
                self.waiting[key] = (opts, rest)
            else:
                del self.waiting[key]

    def _decode(self, jobs: list[_Job], opts) -> None:
        try:
            results = decode_clips(self.engine, [j.clip for j in jobs], opts)
        except Exception as e:
            if len(jobs) > 1:  # find the span that fails, and fail only its recording
                for job in jobs:
                    self._decode([job], opts)
            elif jobs[0].slot in self.pending:
                self._fail(jobs[0].slot, e)
            return
        for job, decoded in zip(jobs, results):
            state = self.pending.get(job.slot)
            if state is None:
                continue
            span = state.spans[job.channel][job.span]
            for d in decoded:
                d.span, d.language = job.span, d.language or opts.language
                d.start, d.end = d.start + span.start, d.end + span.start
                for w in d.words:
                    w.start, w.end = round(w.start + span.start, 3), round(w.end + span.start, 3)
                state.decoded[job.channel].append((job.span, d))
            state.left -= 1
            if state.left == 0:
                self._finish(job.slot)

    def _fail(self, slot: int, error: Exception) -> None:
        state = self.pending.pop(slot)
        rec = state.outcome.recording
        self.done[slot] = Outcome(slot, rec, error=failure(rec, error))

    def _finish(self, slot: int) -> None:
        """A recording whose spans are all decoded: its segments, as one-by-one gives them."""
        state = self.pending.pop(slot)
        rec = state.outcome.recording
        try:
            streams = []
            for spans, decoded in zip(state.spans, state.decoded):
                if spans:
                    decoded.sort(key=lambda item: (item[1].start, item[0]))
                    streams.append(join_spans(rec, spans, decoded))
            state.outcome.segments = list(join_channels(rec, streams, state.audio.duration))
        except Exception as e:
            self.done[slot] = Outcome(slot, rec, error=failure(rec, e))
            return
        self.done[slot] = state.outcome

    def _ready(self) -> Iterator[Outcome]:
        while self.next in self.done:
            yield self.done.pop(self.next)
            self.next += 1
