"""The Speech-LLM engine: a trained `sbasr finetune --arch speechllm` directory, decoding
batches of spans with the LLM's KV cache.

Spans are sorted by length within a look-ahead window before batching (little padding),
and results are yielded in time order. Language identification, when the language is
not given, is Whisper's own, from the model the Speech-LLM's encoder came from.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ...errors import SbasrError
from ...io.audio import SAMPLE_RATE
from ..postprocess import collapse_repetitions
from ..segments import Span
from .base import Decoded, DecodeOptions

DEFAULT_BATCH = 8
MAX_NEW_TOKENS = 200  # the paper's limit


class SpeechLLMEngine:
    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        compute_type: str = "auto",  # float32 on CPU, bfloat16 (or float16) on GPU
        threads: int = 0,
    ) -> None:
        import torch

        from ...speechllm.model import SpeechLLM

        if not model:
            raise SbasrError(
                "the speechllm engine needs a trained model: train one with "
                "`sbasr finetune --arch speechllm --train DATA --output-dir DIR`, then "
                "pass --model DIR"
            )
        if threads:
            torch.set_num_threads(threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        _quiet_transformers()
        self.model = SpeechLLM.load(model).to(device, _dtype(compute_type, device))
        self.model.eval()
        self._lid = None

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        if self._lid is None:
            from .whisper import WhisperEngine

            device = "cuda" if self.device.startswith("cuda") else "cpu"
            self._lid = WhisperEngine(self.model.spec.encoder, device=device)
        return self._lid.detect_language(audio)

    def decode(
        self, audio: np.ndarray, spans: list[Span], options: DecodeOptions
    ) -> Iterator[Decoded]:
        if not spans:
            return
        if not options.language:
            raise SbasrError("the speechllm engine needs a language for each span")
        batch = options.batch_size or DEFAULT_BATCH
        beams = options.beam_size or 1
        max_new = options.max_new_tokens or MAX_NEW_TOKENS
        window = 8 * batch  # spans sorted by length within this many
        for first in range(0, len(spans), window):
            indices = list(range(first, min(first + window, len(spans))))
            indices.sort(key=lambda i: spans[i].duration)
            texts: dict[int, str] = {}
            for b in range(0, len(indices), batch):
                chunk = indices[b : b + batch]
                clips = [_cut(audio, spans[i]) for i in chunk]
                out = self.model.transcribe(clips, [options.language] * len(chunk), max_new, beams)
                texts.update(zip(chunk, out))
            for i in sorted(texts):
                text = collapse_repetitions(texts[i])
                if text:
                    span = spans[i]
                    yield Decoded(i, span.start, span.end, text, language=options.language)


def _cut(audio: np.ndarray, span: Span) -> np.ndarray:
    clip = span.samples(audio)
    return clip if len(clip) else np.zeros(SAMPLE_RATE // 10, np.float32)


def _dtype(compute_type: str, device: str):
    import torch

    if compute_type in ("auto", "default"):
        if not device.startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if compute_type not in names:
        raise SbasrError(
            f"--compute-type {compute_type}: the speechllm engine takes auto, {', '.join(names)}"
        )
    return names[compute_type]


def _quiet_transformers() -> None:
    """No per-file progress bars and load reports on the terminal of a transcription."""
    import warnings

    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
