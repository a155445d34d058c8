"""A call that changes language: each span's language detected, taken where the
detection is sure of it; speech that gives no text is warned about, never dropped
silently. Tones and a fake engine (low tones English, high Italian)."""

from __future__ import annotations

import warnings

import numpy as np
import soundfile as sf
from conftest import SR
from fakes import FakeEngine, fake_vad, pitch, silence, tone  # noqa: F401 - a fixture

import sbasr
from sbasr.asr.options import TranscribeOptions


class UnsureEngine(FakeEngine):
    """Sure of the language of tones under 1 kHz only, and deaf above 1.2 kHz."""

    def detect_language(self, audio):
        lang, _ = super().detect_language(audio)
        return lang, 0.9 if pitch(audio) < 1000 else 0.3

    def decode(self, audio, spans, options):
        for d in super().decode(audio, spans, options):
            if pitch(spans[d.span].samples(audio)) < 1200:
                yield d


def _call(path) -> None:
    sf.write(
        path,
        np.concatenate(
            [
                silence(0.5),
                tone(440, 4.0),  # English, the longest: the channel's language
                silence(1.5),
                tone(700, 1.0),  # Italian, and sure of it
                silence(1.5),
                tone(1100, 1.0),  # Italian, unsure: the channel's language
                silence(1.5),
                tone(1300, 2.5),  # heard, but no text comes of it
                silence(1.0),
            ]
        ),
        SR,
    )


def test_a_span_takes_its_own_language_where_the_detection_is_sure(tmp_path, fake_vad):  # noqa: F811
    _call(tmp_path / "call.wav")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segs = list(sbasr.transcribe(tmp_path / "call.wav", engine=UnsureEngine()))
    assert [(s.language, s.text) for s in segs] == [
        ("en", "en-440"),
        ("it", "it-700"),
        ("en", "en-1100"),
    ]
    (warning,) = [str(w.message) for w in caught]
    assert "call.wav: no text for speech at 11.0-13.5 s" in warning
    assert "--language-per-segment" in warning
    # --language-per-segment: each span's own detection, sure or not
    opts = TranscribeOptions(language_per_segment=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segs = list(sbasr.transcribe(tmp_path / "call.wav", engine=UnsureEngine(), options=opts))
    assert [s.language for s in segs] == ["en", "it", "it"]
