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
        """The most likely language of `audio`.

        Args:
            audio: One channel, 16 kHz, float32.

        Returns:
            (language code, its probability).
        """
        ...

    def decode(
        self, audio: np.ndarray, spans: list[Span], options: DecodeOptions
    ) -> Iterator[Decoded]:
        """Decode `spans` of `audio` in time order, lazily.

        An engine may also offer `decode_clips(clips, options)`, decoding spans of many
        recordings in shared batches (see `decode_clips` below).

        Args:
            audio: One channel, 16 kHz, float32.
            spans: The parts of `audio` to decode.
            options: How to decode.

        Yields:
            What was recognised, each tied to its span by index.

        Raises:
            SbasrError: An option the engine cannot honour
                (`sbasr.asr.options.engine_options`).
        """
        ...


def decode_clips(
    engine: Engine, clips: list[np.ndarray], options: DecodeOptions
) -> list[list[Decoded]]:
    """What `engine` makes of each of `clips`.

    An engine with its own `decode_clips` batches them across recordings; any other
    decodes them one by one, as a recording of one span each.

    Args:
        engine: The engine.
        clips: Spans cut from any recordings, of one language.
        options: How to decode, for all of them.

    Returns:
        For each clip, what was recognised in it, times in seconds of the clip.
    """
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
