"""The Speech-LLM engine: a trained `sbasr finetune --arch speechllm` directory, decoding
batches of spans with the LLM's KV cache.

Spans are sorted by length within a look-ahead window before batching (little padding),
and results are yielded in time order; `decode_clips` batches spans of many recordings
the same way (`sbasr.asr.corpus`). Language identification, when the language is
not given, is Whisper's own, from the model the Speech-LLM's encoder came from.

torch's thread count and transformers' logging are process-wide: the engine sets them
for its own calls only (`_scope`) and gives the caller's back after each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar, cast

import numpy as np

from ...core.constants import SPEECHLLM_CONFIG
from ...core.errors import SbasrError
from ...io.audio import SAMPLE_RATE
from ...speechllm.correction import check_corrections, keep_in_place
from ..options import DecodeOptions, EngineSettings, SpeechLLMDecodeOptions, engine_options
from ..segments import Span
from .base import Decoded, no_gpu

T = TypeVar("T")


class SpeechLLMEngine:
    name = "speechllm"

    def __init__(self, model: str | None = None, settings: EngineSettings | None = None) -> None:
        import torch

        if not model:
            raise SbasrError(
                "the speechllm engine needs a trained model: train one with "
                "`sbasr finetune --arch speechllm --train DATA --output-dir DIR`, then "
                "pass --model DIR"
            )
        settings = settings or EngineSettings()
        if settings.device == "cuda" and not torch.cuda.is_available():
            raise no_gpu()
        _not_whisper(model)

        from ...speechllm.model import SpeechLLM

        device = settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.index = settings.device_index
        if device == "cuda" and self.index:
            device = f"cuda:{self.index}"
        self.device = device
        self.threads = settings.threads
        dtype = _dtype(settings.compute_type, device)  # a bad compute type fails before loading
        with self._scope():
            self.model = SpeechLLM.load(model).merge_lora().to(device, dtype)
        self.model.eval()
        self._lid = None
        _warn_if_poor(model, self.model.spec.dev_wer, self.model.spec.hypothesis)

    def _whisper(self):
        """The Whisper model the Speech-LLM's encoder came from (or that wrote its training
        hypotheses), for language identification and first-pass hypotheses."""
        if self._lid is None:
            from .whisper import WhisperEngine

            device = "cuda" if self.device.startswith("cuda") else "cpu"
            settings = EngineSettings(device=device, threads=self.threads, device_index=self.index)
            spec = self.model.spec
            self._lid = WhisperEngine(spec.hypothesis_model or spec.encoder, settings)
        return self._lid

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        return self._whisper().detect_language(audio)

    def decode(
        self, audio: np.ndarray, spans: list[Span], options: DecodeOptions
    ) -> Iterator[Decoded]:
        options = cast(SpeechLLMDecodeOptions, engine_options(self.name, options))
        if not spans:
            return
        if not options.language:
            raise SbasrError("the speechllm engine needs a language for each span")
        window = 8 * options.batch_size  # spans sorted by length within this many
        for first in range(0, len(spans), window):
            chunk = spans[first : first + window]
            texts = self._texts([_cut(audio, span) for span in chunk], options)
            for i, text in enumerate(texts):
                if text:
                    span = chunk[i]
                    yield Decoded(first + i, span.start, span.end, text, language=options.language)

    def decode_clips(self, clips: list[np.ndarray], options: DecodeOptions) -> list[list[Decoded]]:
        """Decode separate clips (spans of any recordings), sorted by length into batches
        of `batch_size`; each clip's times are from its own start."""
        options = cast(SpeechLLMDecodeOptions, engine_options(self.name, options))
        if not clips:
            return []
        if not options.language:
            raise SbasrError("the speechllm engine needs a language for each span")
        texts = self._texts([c if len(c) else _SILENCE for c in clips], options)
        return [
            [Decoded(i, 0.0, len(clip) / SAMPLE_RATE, text, language=options.language)]
            if text
            else []
            for i, (clip, text) in enumerate(zip(clips, texts))
        ]

    def _texts(self, clips: list[np.ndarray], options: SpeechLLMDecodeOptions) -> list[str]:
        """The text of each clip: batches of similar length (little padding), Whisper's
        hypotheses first for a hypothesis-conditioned model, loops collapsed. Whisper's
        first pass and its check of the corrections share each clip's encoder pass."""
        weight = options.rescore_weight
        if weight is None:
            weight = self.model.spec.rescore_weight
        if options.rescore and weight is not None:  # N-best rescoring (asr/rescore.py)
            return self._rescored(clips, options, weight)
        order = sorted(range(len(clips)), key=lambda i: len(clips[i]))
        if not self.model.spec.hypothesis:
            return self._read(clips, order, options, None)
        with self._whisper().remembering():
            if self.model.spec.nbest_prompt > 1:  # correction over the N-best list
                from ..nbest import nbest_hypotheses

                spec = self.model.spec
                n = max(spec.nbest_prompt, spec.nbest)  # the list training prompted with
                whisper, limit = self._whisper(), spec.nbest_prompt
                hyps, prompts = nbest_hypotheses(whisper, clips, options.language, n, limit)
                return self._read(clips, order, options, hyps, prompts)
            hyps = self._hypotheses(clips, order, options)
            return self._read(clips, order, options, hyps)

    def _rescored(
        self, clips: list[np.ndarray], options: SpeechLLMDecodeOptions, weight: float
    ) -> list[str]:
        from ..rescore import rescore_clips

        whisper = self._whisper()
        n = options.nbest or self.model.spec.nbest
        with whisper.remembering():  # the N-best list and the scores share each encoding
            return rescore_clips(
                self.model,
                whisper,
                clips,
                cast(str, options.language),
                n,
                min(1.0, weight),
                own=options.rescore_own,
                batch_size=options.batch_size,
                scope=self._scope,
                max_new_tokens=options.max_new_tokens,
            )

    def _read(
        self,
        clips: list[np.ndarray],
        order: list[int],
        options: SpeechLLMDecodeOptions,
        hyps: dict[int, str] | None,
        prompts: dict[int, str] | None = None,
    ) -> list[str]:
        prompts = prompts or hyps  # what the LLM is prompted with: the 1-best, or the list
        out = self._batched(
            order,
            options.batch_size,
            lambda chunk: self.model.transcribe(
                [clips[i] for i in chunk],
                [options.language] * len(chunk),
                options.max_new_tokens,
                options.beam_size,
                hypotheses=[prompts[i] for i in chunk] if prompts else None,
            ),
        )
        texts = dict(zip(order, out))
        result = [texts[i] for i in range(len(clips))]  # loops already cut by the model
        if not hyps:
            return result
        result = keep_in_place(result, hyps)
        if options.check_corrections:
            result = check_corrections(result, hyps, self._pair_scorer(clips, options), prompts)
        return result

    def _pair_scorer(self, clips: list[np.ndarray], options: SpeechLLMDecodeOptions):
        """Scores candidate texts of `clips` by Whisper and by the LLM, for the check of
        the corrections (`sbasr.speechllm.correction.check_corrections`)."""

        def score(rows: list[int], candidates: list[str], prompted: list[str]):
            audio = [clips[i] for i in rows]
            heard = self._whisper().score_texts(audio, candidates, options.language)
            read = self._batched(
                list(range(len(candidates))),
                2 * max(1, options.batch_size // 2),  # whole pairs
                lambda batch: self.model.score(
                    [audio[r] for r in batch],
                    [options.language] * len(batch),
                    [candidates[r] for r in batch],
                    hypotheses=[prompted[r] for r in batch],
                ),
            )
            return heard, read

        return score

    def _batched(self, items: list[int], size: int, run: Callable[[list[int]], list[T]]) -> list[T]:
        """`run` over `items` in batches of `size`, each in the engine's scope: scoped per
        batch, not around a generator, because the caller runs between yields."""
        out: list[T] = []
        for b in range(0, len(items), size):
            with self._scope():
                out += run(items[b : b + size])
        return out

    def _hypotheses(
        self, clips: list[np.ndarray], order: list[int], options: SpeechLLMDecodeOptions
    ) -> dict[int, str] | None:
        """Whisper's first pass over the clips, for a hypothesis-conditioned model (None
        for the paper's pure Speech-LLM)."""
        if not self.model.spec.hypothesis:
            return None
        from ..hypotheses import whisper_hypotheses

        texts = whisper_hypotheses(
            self._whisper(), [clips[i] for i in order], [options.language] * len(order)
        )
        return dict(zip(order, texts))

    @contextmanager
    def _scope(self) -> Iterator[None]:
        """The engine's thread count and a quiet transformers (no per-file progress bars,
        load reports or deprecation warnings on a transcription's terminal), for the
        duration of one call; the caller's settings are restored after."""
        import warnings

        import torch
        from transformers.utils import logging

        threads = torch.get_num_threads()
        verbosity = logging.get_verbosity()
        bars = logging.is_progress_bar_enabled()
        try:
            if self.threads and self.threads != threads:
                torch.set_num_threads(self.threads)
            logging.set_verbosity_error()
            logging.disable_progress_bar()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
                yield
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            logging.set_verbosity(verbosity)
            if bars:
                logging.enable_progress_bar()


def _not_whisper(model: str) -> None:
    """A Whisper model given to this engine (an embedded name, a CTranslate2 directory or
    its parent, a transformers Whisper directory) is an error that names the right engine."""
    from ...whisper.models import EMBEDDED, is_ct2_dir, is_transformers_whisper

    path = Path(model).expanduser()
    if (path / SPEECHLLM_CONFIG).is_file():
        return
    if (
        model in EMBEDDED
        or is_ct2_dir(path)
        or is_ct2_dir(path / "ct2")
        or is_transformers_whisper(path)
    ):
        raise SbasrError(
            f"{model}: a Whisper model, not a Speech-LLM: transcribe with --engine whisper "
            f"--model {model}"
        )


POOR_DEV_WER = 0.5


def _warn_if_poor(model: str, dev_wer: float | None, hypothesis: bool = False) -> None:
    """Once per load: a model that scored badly on its own dev set writes fluent text
    that is not what was said, and the user should know before trusting it. A
    hypothesis-conditioned model's dev score is its own text, before the check of its
    corrections: what is poor there is its changes to Whisper's text, and the advice
    is not to turn on what it already uses."""
    if dev_wer is None or dev_wer <= POOR_DEV_WER:
        return
    import warnings

    score = f"reached only {100 * dev_wer:.1f}% CER/WER on its dev set in training"
    if hypothesis:
        message = (
            f"{model}: this hypothesis-conditioned Speech-LLM {score}; its corrections of "
            "Whisper's text are unreliable (keep the correction check on, train on more "
            "data, or use the Whisper engine)"
        )
    else:
        message = (
            f"{model}: this Speech-LLM {score}; its transcripts are unreliable (train on "
            "more data, or use --hypothesis, or the Whisper engine)"
        )
    warnings.warn(message, UserWarning, stacklevel=3)


_SILENCE = np.zeros(SAMPLE_RATE // 10, np.float32)  # what an empty span is decoded as


def _cut(audio: np.ndarray, span: Span) -> np.ndarray:
    clip = span.samples(audio)
    return clip if len(clip) else _SILENCE


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
