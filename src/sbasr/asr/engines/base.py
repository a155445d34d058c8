"""Recognition engines. Each turns spans of one channel's audio into text, and knows
nothing of files, channels, segmentation or output formats."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ...core.errors import SbasrError
from ...io.audio import SAMPLE_RATE
from ..options import DecodeOptions
from ..segments import Span


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
    name: str  # the key of its options class in `sbasr.asr.options.ENGINE_OPTIONS`

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The most likely language of `audio` and its probability."""
        ...

    def decode(
        self, audio: np.ndarray, spans: list[Span], options: DecodeOptions
    ) -> Iterator[Decoded]:
        """Decode `spans` of `audio` (one channel, 16 kHz) in time order, lazily; an option
        the engine cannot honour is an SbasrError (`sbasr.asr.options.engine_options`).

        An engine may also offer `decode_clips(clips, options)`, decoding spans of many
        recordings in shared batches (see `decode_clips` below)."""
        ...


def decode_clips(
    engine: Engine, clips: list[np.ndarray], options: DecodeOptions
) -> list[list[Decoded]]:
    """What `engine` makes of each of `clips` (spans cut from any recordings, one
    language and one set of options), times in seconds of each clip.

    An engine with its own `decode_clips` batches them across recordings; any other
    decodes them one by one, as a recording of one span each."""
    own = getattr(engine, "decode_clips", None)
    if own is not None:
        return own(clips, options)
    return [
        list(engine.decode(clip, [Span(0.0, len(clip) / SAMPLE_RATE)], options)) for clip in clips
    ]


def no_gpu() -> SbasrError:
    """What `--device cuda` without a visible GPU says, plainly, before a model loads (the
    runtimes' own words, "CUDA driver version is insufficient", send users astray)."""
    return SbasrError("--device cuda asked but no CUDA GPU is visible; use --device cpu or auto")
