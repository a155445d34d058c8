"""Where a span is prompted with the text before it: only within one speaker's contiguous
speech, never across a pause, a language change, another speaker's turn or an overlap.
Tones and a fake engine that records which spans share a decoding call (the Whisper
engine conditions each span on the spans before it in the same call)."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from conftest import SR
from fakes import FakeEngine, fake_vad, silence, tone  # noqa: F401 - fake_vad is a fixture

import sbasr
from sbasr.asr.options import TranscribeOptions, WhisperDecodeOptions
from sbasr.asr.pipeline import context_runs
from sbasr.asr.segments import Span


class CallRecorder(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[tuple[int, float]]] = []

    def decode(self, audio, spans, options):
        self.calls.append([(s.channel, s.start) for s in spans])
        return super().decode(audio, spans, options)


def _place(track: np.ndarray, start: float, clip: np.ndarray) -> None:
    track[int(start * SR) : int(start * SR) + len(clip)] += clip


def test_context_runs_end_at_pauses_languages_speakers_and_overlaps():
    a = [
        Span(0.0, 4.0, 0, "A"),
        Span(4.5, 5.0, 0, "A"),  # 0.5 s later: contiguous
        Span(7.0, 7.3, 0, "A"),  # after B's turn
        Span(7.6, 8.0, 0, "A"),  # another language
        Span(10.0, 10.5, 0, "A"),  # after a 2 s pause
        Span(10.4, 11.0, 0, "A"),  # overlaps the span before
        Span(11.2, 11.5, 0, "A"),
    ]
    b = [Span(5.8, 6.2, 1, "B")]
    languages = ["en", "en", "en", "it", "it", "it", "it"]
    assert context_runs(a, languages, a + b) == [[0, 1], [2], [3], [4], [5, 6]]
    # a span with no audio (no language) is left out; one speaker's turns stay apart
    speakers = [Span(0.0, 1.0, 0, "x"), Span(1.2, 2.0, 0, "y"), Span(2.2, 3.0, 0, "y")]
    assert context_runs(speakers, ["en", None, "en"], speakers) == [[0], [2]]


def test_short_turns_after_a_long_one_are_not_prompted_with_it(tmp_path, fake_vad):  # noqa: F811
    left, right = silence(12.0), silence(12.0)
    _place(left, 0.0, tone(300, 4.0))  # a long prompt
    _place(left, 4.5, tone(300, 0.5))  # its speaker goes on
    _place(right, 5.8, tone(400, 0.4))  # the other speaker answers
    _place(left, 7.0, tone(350, 0.3))  # a one-word turn
    _place(left, 7.6, tone(700, 0.4))  # in another language
    _place(left, 10.0, tone(360, 0.5))  # after a pause
    path = tmp_path / "call.wav"
    sf.write(path, np.stack([left, right], axis=1), SR)
    engine = CallRecorder()
    options = TranscribeOptions(channels="split", language_per_segment=True)
    texts = [s.text for s in sbasr.transcribe(path, engine=engine, options=options)]
    assert texts == ["en-300", "en-300", "en-400", "en-350", "it-700", "en-360"]
    assert sorted(engine.calls) == [
        [(0, 0.0), (0, 4.5)],
        [(0, 7.0)],
        [(0, 7.6)],
        [(0, 10.0)],
        [(1, 5.8)],
    ]
    # without conditioning nothing carries over: each language's spans in one call
    engine = CallRecorder()
    decode = WhisperDecodeOptions(condition_on_previous_text=False)
    options = TranscribeOptions(channels="split", language_per_segment=True, decode=decode)
    assert len(list(sbasr.transcribe(path, engine=engine, options=options))) == 6
    assert sorted(engine.calls) == [
        [(0, 0.0), (0, 4.5), (0, 7.0), (0, 10.0)],
        [(0, 7.6)],
        [(1, 5.8)],
    ]


def test_hotwords_keep_each_turn_its_own_segment(tmp_path, fake_vad, monkeypatch):  # noqa: F811
    """Prompted with hotwords Whisper writes no timestamps, so turns VAD would merge into
    one span are spans of their own, each decoded alone."""
    import sbasr.asr.pipeline

    calls = []
    real = sbasr.asr.pipeline.vad_spans

    def vad(audio, channel=0, speaker=None, max_gap=1.0):
        calls.append(max_gap)
        return real(audio, channel, speaker, max_gap)

    monkeypatch.setattr(sbasr.asr.pipeline, "vad_spans", vad)
    turns = [tone(300, 1.0), silence(0.6), tone(400, 0.5), silence(0.6), tone(350, 0.8)]
    path = tmp_path / "mono.wav"
    sf.write(path, np.concatenate([silence(0.2), *turns]), SR)
    engine = CallRecorder()
    decode = WhisperDecodeOptions(hotwords="sbasr")
    segments = list(sbasr.transcribe(path, engine=engine, options=TranscribeOptions(decode=decode)))
    assert calls == [0.0] and [s.text for s in segments] == ["en-300", "en-400", "en-350"]
    assert engine.calls == [[(0, 0.2)], [(0, 1.8)], [(0, 2.9)]]
    calls.clear()
    list(sbasr.transcribe(path, engine=CallRecorder()))
    assert calls == [1.0]


def test_a_segment_without_timestamps_ends_with_its_span():
    from types import SimpleNamespace

    from sbasr.asr.engines.whisper import _decoded

    def seg(start, end, text):
        return SimpleNamespace(
            start=start, end=end, text=text, words=None, avg_logprob=-0.2, no_speech_prob=0.0
        )

    # Whisper's one segment for a 2 s span runs on to 7 s, past the next span's start
    out = list(
        _decoded(
            [seg(0.0, 7.0, "hold the line"), seg(5.0, 6.0, "five")],
            0.0,
            np.array([0.0, 5.0]),
            "en",
            10 * SR,
            np.array([2.0, 6.0]),
        )
    )
    assert [(d.span, d.start, d.end) for d in out] == [(0, 0.0, 2.0), (1, 5.0, 6.0)]
