"""sbasr: multilingual conversational speech recognition, Whisper and Speech-LLM side by side.

Submodules are imported on first use so that the CLI and `import sbasr` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The one place the version is written: setuptools reads it from here (pyproject.toml).
__version__ = "0.1.0"

_EXPORTS = {
    "score": "sbasr.scoring.api",
    "score_summary": "sbasr.scoring.api",
    "ScoreReport": "sbasr.scoring.results",
    "ScoreSummary": "sbasr.scoring.results",
    "ErrorCounts": "sbasr.scoring.results",
    "UtteranceScore": "sbasr.scoring.results",
    "Transcripts": "sbasr.scoring.transcripts",
    "read_transcripts": "sbasr.scoring.transcripts",
    "SbasrError": "sbasr.core.errors",
    "transcribe": "sbasr.asr.api",
    "Segment": "sbasr.asr.pipeline",
    "TranscribeOptions": "sbasr.asr.options",
    "DecodeOptions": "sbasr.asr.options",
    "WhisperDecodeOptions": "sbasr.asr.options",
    "SpeechLLMDecodeOptions": "sbasr.asr.options",
    "EngineSettings": "sbasr.asr.options",
}

__all__ = [
    "DecodeOptions",
    "EngineSettings",
    "ErrorCounts",
    "SbasrError",
    "ScoreReport",
    "ScoreSummary",
    "Segment",
    "SpeechLLMDecodeOptions",
    "TranscribeOptions",
    "Transcripts",
    "UtteranceScore",
    "WhisperDecodeOptions",
    "__version__",
    "read_transcripts",
    "score",
    "score_summary",
    "transcribe",
]

if TYPE_CHECKING:
    from .asr.api import transcribe
    from .asr.options import (
        DecodeOptions,
        EngineSettings,
        SpeechLLMDecodeOptions,
        TranscribeOptions,
        WhisperDecodeOptions,
    )
    from .asr.pipeline import Segment
    from .core.errors import SbasrError
    from .scoring.api import score, score_summary
    from .scoring.results import ErrorCounts, ScoreReport, ScoreSummary, UtteranceScore
    from .scoring.transcripts import Transcripts, read_transcripts


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sbasr' has no attribute {name!r}")
