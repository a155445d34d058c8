"""sbasr: multilingual conversational speech recognition, Whisper and Speech-LLM side by side.

Submodules are imported on first use so that the CLI and `import sbasr` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Kept in step with pyproject.toml by a test; importlib.metadata would cost 40 ms a start.
__version__ = "0.1.0"

_EXPORTS = {
    "score": "sbasr.scoring",
    "ScoreReport": "sbasr.scoring",
    "ErrorCounts": "sbasr.scoring",
    "UtteranceScore": "sbasr.scoring",
    "Transcripts": "sbasr.transcripts",
    "read_transcripts": "sbasr.transcripts",
    "SbasrError": "sbasr.errors",
    "transcribe": "sbasr.pipeline",
    "Segment": "sbasr.pipeline",
    "TranscribeOptions": "sbasr.pipeline",
    "DecodeOptions": "sbasr.engines",
}

__all__ = [
    "DecodeOptions",
    "ErrorCounts",
    "SbasrError",
    "ScoreReport",
    "Segment",
    "TranscribeOptions",
    "Transcripts",
    "UtteranceScore",
    "__version__",
    "read_transcripts",
    "score",
    "transcribe",
]

if TYPE_CHECKING:
    from .engines import DecodeOptions
    from .errors import SbasrError
    from .pipeline import Segment, TranscribeOptions, transcribe
    from .scoring import ErrorCounts, ScoreReport, UtteranceScore, score
    from .transcripts import Transcripts, read_transcripts


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sbasr' has no attribute {name!r}")
