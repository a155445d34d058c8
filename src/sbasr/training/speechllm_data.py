"""The Speech-LLM's training data: utterances as prompt, audio (or cached encoder frames)
and target tokens; the encoder cache filled once; Whisper's hypotheses for a
hypothesis-conditioned model; batches collated."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..core.constants import SPEECHLLM_BATCH_SIZE
from ..io.audio import SAMPLE_RATE
from ..speechllm.cache import EncoderCache, audio_key
from ..speechllm.model import SpeechLLM
from .data import Example, error_rates, load_example_audio
from .dataset import AudioDataset, perturb
from .options import TrainOptions
from .speechllm_options import SpeechLLMOptions


class SpeechLLMDataset(AudioDataset):
    """Examples as (audio, prompt ids, transcript ids + eos); with a `cache`, as the
    frozen encoders' outputs instead of audio, each computed once (`fill_cache`)."""

    def __init__(
        self,
        examples: list[Example],
        model: SpeechLLM,
        opts: TrainOptions,
        train: bool = True,
        cache: EncoderCache | None = None,
        hypotheses: dict[Example, str] | None = None,
    ) -> None:
        super().__init__(examples, opts, train)
        self.prompts = {lang: model.prompt_ids(lang) for lang in {e.language for e in examples}}
        self.target_ids = model.target_ids
        self.model, self.cache, self.hypotheses = model, cache, hypotheses

    def positions(self) -> list[int]:
        """Each example's length in LLM positions (prompt, speech, transcript and end),
        estimated without loading its audio: what it costs the LLM in a batch."""
        per_second = 50 / self.model.spec.downsample  # Whisper's 50 frames a second
        return [
            len(self.prompt(ex))
            + int((ex.duration or 0.0) / self.speed_of(i) * per_second)
            + 1
            + len(self.target_ids(ex.text))
            for i, ex in enumerate(self.examples)
        ]

    def prompt(self, ex: Example) -> list[int]:
        if self.hypotheses is None:
            return self.prompts[ex.language]
        return self.model.prompt_ids(ex.language, self.hypotheses.get(ex, ""))

    def features(self, ex: Example, audio: np.ndarray) -> dict:
        return {
            "audio": audio.astype(np.float32),
            "prompt_ids": self.prompt(ex),
            "labels": self.target_ids(ex.text),
        }

    def item(self, ex: Example, audio: np.ndarray, speed: float) -> dict:
        if self.cache is None:
            return super().item(ex, audio, speed)
        key = audio_key(audio, speed)
        frames = self.cache.get(key)
        if frames is None:  # not filled beforehand (a file changed since): encode it now
            frames = _encode(self.model, [perturb(audio, speed)])[0]
            self.cache.put(key, frames)
        return {
            "frames": frames,
            "prompt_ids": self.prompt(ex),
            "labels": self.target_ids(ex.text),
        }


def dev_error_rates(
    model: SpeechLLM, dataset: SpeechLLMDataset, batch: int = SPEECHLLM_BATCH_SIZE
) -> dict:
    """The dev set decoded greedily (as `sbasr transcribe` would) and scored by sbasr:
    {"wer": pooled rate, "wer_<language>": ...}."""
    from ..scoring.transcripts import Transcripts

    examples = sorted(dataset.examples, key=lambda e: e.duration or 0.0)
    texts = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(examples), batch):
            part = examples[start : start + batch]
            audio = [load_example_audio(ex) for ex in part]
            hyps = [dataset.hypotheses.get(ex, "") for ex in part] if dataset.hypotheses else None
            out = model.transcribe(audio, [ex.language for ex in part], hypotheses=hyps)
            texts += out  # loops cut to one copy, as the engine writes them
    finally:
        model.train(was_training)
    ids, langs = [ex.id for ex in examples], [ex.language for ex in examples]
    return error_rates(examples, Transcripts("dev", ids, texts, langs))


def fill_cache(
    model: SpeechLLM,
    dataset: SpeechLLMDataset,
    indices: list[int] | None = None,
    echo=print,
    batch_seconds: float = 60.0,
) -> None:
    """Encode every example of `dataset` (or those at `indices`) that the cache lacks, in
    batches of similar lengths, before training starts."""
    cache = dataset.cache
    assert cache is not None
    pending = []
    for index in range(len(dataset)) if indices is None else indices:
        ex = dataset.examples[index]
        try:
            audio = load_example_audio(ex)
        except Exception:  # the dataset skips and counts it when it comes up
            continue
        speed = dataset.speed_of(index)
        key = audio_key(audio, speed)
        if key not in cache:
            pending.append((key, perturb(audio, speed)))
    if not pending:
        echo(f"encoder outputs: all {len(dataset):,} cached in {cache.directory}")
        return
    start = time.perf_counter()
    pending.sort(key=lambda p: len(p[1]))
    limit = batch_seconds * SAMPLE_RATE
    batch: list[tuple[str, np.ndarray]] = []
    for i, item in enumerate(pending):
        batch.append(item)
        if i + 1 == len(pending) or sum(len(a) for _, a in batch) + len(pending[i + 1][1]) > limit:
            for (key, _), frames in zip(batch, _encode(model, [a for _, a in batch])):
                cache.put(key, frames)
            batch = []
    echo(
        f"encoder outputs: {len(pending):,} computed once in {time.perf_counter() - start:.0f} s"
        f", {len(dataset) - len(pending):,} reused from {cache.directory}"
    )


def _encode(model: SpeechLLM, audio: list[np.ndarray]) -> list[list]:
    import torch

    was_training = model.training
    model.eval()  # frozen encoders run in eval mode in training too
    try:
        with torch.no_grad():
            return model.encoder_outputs(audio)
    finally:
        model.train(was_training)


def collate(items: list[dict]) -> dict:
    import torch

    width = max(len(i["labels"]) for i in items)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    for row, item in enumerate(items):
        labels[row, : len(item["labels"])] = torch.tensor(item["labels"])
    speech = "frames" if "frames" in items[0] else "audio"
    return {
        speech: [i[speech] for i in items],
        "prompt_ids": [i["prompt_ids"] for i in items],
        "labels": labels,
    }


def hypotheses(model: SpeechLLM, examples: list[Example], echo) -> dict[Example, str]:
    """Whisper's transcript of every example, decoded once (cached across stages and runs)
    by the engine the Speech-LLM engine uses at transcription."""
    from ..asr.engines.whisper import WhisperEngine
    from ..asr.hypotheses import cached_hypotheses
    from ..asr.options import EngineSettings

    source = model.spec.hypothesis_model or model.spec.encoder
    device = "cuda" if next(model.projector.parameters()).is_cuda else "cpu"
    if model.spec.nbest_prompt > 1:  # correction over the N-best list
        from ..asr.nbest import cached_nbest, nbest_prompt_text

        k = model.spec.nbest_prompt
        lists = cached_nbest(
            source,
            [(lambda ex=ex: load_example_audio(ex), ex.language) for ex in examples],
            lambda: WhisperEngine(source, EngineSettings(device=device)),
            max(k, model.spec.nbest),
            echo,
        )
        return {ex: nbest_prompt_text(hyps, k) for ex, hyps in zip(examples, lists)}
    texts = cached_hypotheses(
        source,
        [(lambda ex=ex: load_example_audio(ex), ex.language) for ex in examples],
        lambda: WhisperEngine(source, EngineSettings(device=device)),
        echo,
    )
    return dict(zip(examples, texts))


def encoder_cache(model: SpeechLLM, opts: SpeechLLMOptions) -> EncoderCache | None:
    """The cache of encoder outputs, when the encoders are frozen and it is not off."""
    if opts.encoder_cache == "off" or model.spec.train_encoder != "frozen":
        return None
    directory = Path(opts.encoder_cache_dir) if opts.encoder_cache_dir else None
    return EncoderCache(model.encoder_identity(), directory)
