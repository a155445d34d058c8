"""Making an engine from its name: the one place that knows every engine."""

from __future__ import annotations

from ..options import EngineSettings, engine_options
from .base import Engine


def load_engine(name: str, model: str | None, settings: EngineSettings | None = None) -> Engine:
    """Make an engine by name.

    Args:
        name: whisper or speechllm.
        model: The engine's model; None: its default (the Speech-LLM has none).
        settings: Where the engine runs; None: the defaults.

    Returns:
        The engine, its model loaded.

    Raises:
        SbasrError: An unknown engine, a model that cannot be found or loaded, or a
            device that is not there.
    """
    engine_options(name)  # an unknown engine name is an SbasrError
    if name == "speechllm":
        from .speechllm import SpeechLLMEngine

        return SpeechLLMEngine(model, settings)
    from .whisper import WhisperEngine

    return WhisperEngine(model, settings)
