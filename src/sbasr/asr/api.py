"""The library's transcription entry point: `sbasr.transcribe`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from ..core.errors import SbasrError
from .corpus import transcribe_many
from .engines.base import Engine
from .engines.registry import load_engine
from .inputs import expand_inputs
from .options import EngineSettings, TranscribeOptions, check_language, engine_options
from .pipeline import Segment, transcribe_recording


def transcribe(
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    engine: str | Engine = "whisper",
    model: str | None = None,
    options: TranscribeOptions | None = None,
    oracle_segments: bool = False,
    settings: EngineSettings | None = None,
    **engine_settings: Any,
) -> Iterator[Segment]:
    """Transcribe files, directories or manifests, lazily.

    Segments come in time order within each recording. With a batch size over 1, spans of
    many recordings are decoded together and each recording's segments come once it is
    complete.

    Args:
        inputs: Audio files, directories of them, or JSON Lines manifests (one or many).
        engine: An engine's name (whisper, speechllm) or an engine already made.
        model: The model of an engine named by `engine`; None: the engine's default.
        options: How recordings are cut and decoded; None: the defaults.
        oracle_segments: Take each recording's segments from its `<audio>.txt`.
        settings: Where an engine named by `engine` runs.
        **engine_settings: Fields of `settings` as keywords (`device`, `compute_type`,
            `threads`).

    Yields:
        The recognised segments.

    Raises:
        SbasrError: A decoding option the engine cannot honour or an unknown language
            (before anything loads), an input that cannot be read, or a recording that
            fails to decode.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    options = options or TranscribeOptions()
    name = engine if isinstance(engine, str) else engine.name
    decode = engine_options(name, options.decode)
    if decode.language:  # a name ("Italian") as its code; an unknown one fails here
        decode = replace(decode, language=check_language(decode.language))
    options = replace(options, decode=decode)
    settings = replace(settings or EngineSettings(), **engine_settings)
    recordings, problems = expand_inputs(list(inputs), oracle_segments)
    if problems:
        raise SbasrError(problems[0][1])
    if isinstance(engine, str):
        engine = load_engine(engine, model, settings)
    if (options.decode.batch_size or 1) > 1:  # spans of many recordings share batches
        for outcome in transcribe_many(recordings, engine, options):
            if outcome.error is not None:
                raise SbasrError(outcome.error)
            yield from outcome.segments
        return
    for rec in recordings:
        yield from transcribe_recording(rec, engine, options)
