"""Recognition engines. Each turns spans of one channel's audio into text, and knows
nothing of files, channels, segmentation or output formats."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ...choices import ENGINES
from ..segments import Span


@dataclass
class DecodeOptions:
    """How to decode; an engine ignores what it has no use for."""

    language: str | None = None  # None: detect
    beam_size: int | None = None  # None: the engine's default (Whisper 5, Speech-LLM 1)
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # fallback ladder
    initial_prompt: str | None = None
    hotwords: str | None = None
    word_timestamps: bool = False
    batch_size: int | None = None  # None: the engine's default (Whisper 1, Speech-LLM 8)
    max_new_tokens: int | None = None
    condition_on_previous_text: bool = True  # prompt each window with the text before it
    # Predict times inside a span (VAD spans hold several sentences). Oracle segments keep
    # their own times, and decoding without timestamp tokens is ~10% faster.
    timestamps: bool = True


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass
class Decoded:
    """What an engine returns for (part of) one span, times in seconds of the recording."""

    span: int  # index into the spans it was given
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    language: str | None = None


class Engine(Protocol):
    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The most likely language of `audio` and its probability."""
        ...

    def decode(
        self, audio: np.ndarray, spans: list[Span], options: DecodeOptions
    ) -> Iterator[Decoded]:
        """Decode `spans` of `audio` (one channel, 16 kHz) in time order, lazily."""
        ...


def load_engine(name: str, model: str | None, **settings: object) -> Engine:
    """The engine `name` with `model` (its default when None)."""
    from ...errors import SbasrError

    if name == "whisper":
        from .whisper import WhisperEngine

        return WhisperEngine(model, **settings)  # type: ignore[arg-type]
    if name == "speechllm":
        from .speechllm import SpeechLLMEngine

        return SpeechLLMEngine(model, **settings)  # type: ignore[arg-type]
    raise SbasrError(f"unknown engine {name!r}; use {' or '.join(ENGINES)}")
