"""Making an engine from its name: the one place that knows every engine."""

from __future__ import annotations

from ..options import EngineSettings, engine_options
from .base import Engine


def load_engine(name: str, model: str | None, settings: EngineSettings | None = None) -> Engine:
    """The engine `name` with `model` (its default when None)."""
    engine_options(name)  # an unknown engine name is an SbasrError
    if name == "speechllm":
        from .speechllm import SpeechLLMEngine

        return SpeechLLMEngine(model, settings)
    from .whisper import WhisperEngine

    return WhisperEngine(model, settings)
