"""The fake recogniser shared by the transcription plumbing tests: a tone engine (a
span's text is its language and pitch), an energy "VAD" in place of Silero, and the CLI
with both in place of any model. Milliseconds a test, on generated tones."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from conftest import SR

from sbasr.asr.engines.base import Decoded
from sbasr.asr.options import DecodeOptions
from sbasr.asr.segments import Span


def tone(freq: float, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def pitch(audio: np.ndarray) -> int:
    """The dominant frequency of `audio`, to the nearest 10 Hz."""
    spectrum = np.abs(np.fft.rfft(audio))
    return int(round(np.argmax(spectrum) * SR / len(audio), -1))


def energy_vad(
    audio: np.ndarray, channel: int = 0, speaker: str | None = None, max_gap: float = 1.0
) -> list[Span]:
    """Stand-in for Silero: the loud stretches, in 0.1 s frames."""
    n = len(audio) // 1600
    loud = [*(np.abs(audio[: n * 1600].reshape(n, 1600)).max(axis=1) > 0.05), False]
    spans, start = [], None
    for i, on in enumerate(loud):
        if on and start is None:
            start = i
        elif not on and start is not None:
            spans.append(Span(start / 10, i / 10, channel, speaker))
            start = None
    return spans


class FakeEngine:
    """Recognises tones: a span's text is `{language}-{pitch}`, and the language of audio
    is English below 600 Hz and Italian above."""

    name = "whisper"

    def __init__(self) -> None:
        self.detected: list[str] = []
        self.decoded: list[tuple[str | None, int]] = []

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        lang = "en" if pitch(audio) < 600 else "it"
        self.detected.append(lang)
        return lang, 1.0

    def decode(
        self, audio: np.ndarray, spans: list[Span], options: DecodeOptions
    ) -> Iterator[Decoded]:
        for i, span in enumerate(spans):
            clip = span.samples(audio)
            if len(clip) < SR // 10 or np.abs(clip).max() < 0.05:  # silence: no text
                continue
            self.decoded.append((options.language, pitch(clip)))
            text = f"{options.language}-{pitch(clip)}"
            yield Decoded(i, span.start, span.end, text, language=options.language)


@pytest.fixture
def fake_vad(monkeypatch) -> None:
    import sbasr.asr.pipeline
    import sbasr.asr.segments

    monkeypatch.setattr(sbasr.asr.pipeline, "vad_spans", energy_vad)
    monkeypatch.setattr(sbasr.asr.segments, "vad_spans", energy_vad)


@pytest.fixture
def fake_cli(monkeypatch, fake_vad) -> FakeEngine:
    """The CLI with the fake engine in place of any model: `invoke` runs it in-process."""
    import sbasr.asr.engines.registry

    engine = FakeEngine()
    monkeypatch.setattr(sbasr.asr.engines.registry, "load_engine", lambda *a, **k: engine)
    return engine


def invoke(*args: str):
    from typer.testing import CliRunner

    from sbasr.cli import app

    return CliRunner().invoke(app, list(args))
