"""Training the Speech-LLM in the paper's two stages, under the transformers Trainer.

Stage 1 trains the fusion and the projector with the encoders and the LLM frozen;
stage 2 starts from stage 1's weights and adds LoRA on the LLM. Batches hold up to a
number of seconds of audio (similar lengths together, so little is padding). Dev loss
picks the best checkpoint, and `average_best` averages the N best. Each stage trains in
OUT/stageN (checkpoints, logs); the final model is written to OUT itself, which
`sbasr transcribe --engine speechllm --model OUT` loads.
"""

from __future__ import annotations

import random
import shutil
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import SbasrError
from ..io.audio import SAMPLE_RATE
from ..options import check_choices
from ..training.arguments import checkpoints, last_checkpoint, tensorboard, training_arguments
from ..training.data import Example, error_rates, load_example_audio
from ..training.dataset import AudioDataset, load_data, perturb
from ..training.options import TrainOptions
from ..training.output import (
    RUN_CONFIG,
    check_not_a_file,
    contents,
    ensure_writable_dir,
    is_main_process,
    refuse_earlier_run,
)
from ..training.quiet import quiet_checkpoint_order
from ..training.record import plot_history, save_config
from .cache import EncoderCache, audio_key
from .model import CONFIG_NAME, SpeechLLM, average_trained, read_trained
from .options import SpeechLLMOptions


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


def dev_error_rates(model: SpeechLLM, dataset: SpeechLLMDataset, batch: int = 8) -> dict:
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


class SecondsBatchSampler:
    """Batches of at most `seconds` of audio (and `max_items` utterances): utterances of
    similar length go together, so little of a batch is padding; the order of batches is
    shuffled anew each epoch, from the seed, so that a resumed run sees the same ones.

    With `positions` (each utterance's length in LLM positions: prompt, speech and
    transcript), utterances are sorted by those, and no batch holds more padded positions
    than `POSITION_FACTOR` times the average batch of the same data batched by seconds
    alone. Seconds of audio alone misjudge a batch whose prompt or transcript is long for
    its audio: a 1 s clip whose Whisper hypothesis looped for 244 tokens padded its 30
    short neighbours to 280 positions each, a step 20 times slower than the rest that
    needed over 10 GB on a CPU.
    """

    POSITION_FACTOR = 3

    def __init__(
        self,
        durations: list[float],
        seconds: float,
        max_items: int,
        seed: int,
        shuffle: bool = True,
        positions: list[int] | None = None,
    ) -> None:
        self.durations, self.seconds, self.max_items = durations, seconds, max_items
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0
        self.positions = positions
        self.max_positions: int | None = None
        if positions:
            plain = self._group(list(range(len(durations))), durations.__getitem__, None)
            padded = [len(b) * max(positions[i] for i in b) for b in plain]
            self.max_positions = int(self.POSITION_FACTOR * sum(padded) / len(padded))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _group(self, order: list[int], key, max_positions: int | None) -> list[list[int]]:
        """`order` cut into batches, each pool of it sorted by `key` first; with
        `max_positions`, no batch's padded positions exceed it."""
        batches: list[list[int]] = []
        pool = 100 * max(1, self.max_items)  # sort within pools: similar lengths, still random
        for p in range(0, len(order), pool):
            batch: list[int] = []
            total, widest = 0.0, 0
            for i in sorted(order[p : p + pool], key=key):
                d = self.durations[i]
                width = max(widest, self.positions[i]) if max_positions else 0
                if batch and (
                    total + d > self.seconds
                    or len(batch) >= self.max_items
                    or (max_positions and (len(batch) + 1) * width > max_positions)
                ):
                    batches.append(batch)
                    batch, total, widest = [], 0.0, 0
                    width = self.positions[i] if max_positions else 0
                batch.append(i)
                total += d
                widest = width
            if batch:
                batches.append(batch)
        return batches

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 7919 + self.epoch)
        order = list(range(len(self.durations)))
        if self.shuffle:
            rng.shuffle(order)
        lengths = self.positions if self.positions is not None else self.durations
        batches = self._group(order, lengths.__getitem__, self.max_positions)
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def _trainer_class():
    from torch.utils.data import DataLoader
    from transformers import Trainer, TrainerCallback

    class SpeechLLMTrainer(Trainer):
        """Batches by seconds of audio; checkpoints hold only what is trained (a few MB,
        not the frozen encoders and LLM), in the same format as the final model."""

        def __init__(self, *args, batch_seconds: float = 120.0, dev_wer: bool = False, **kw):
            super().__init__(*args, **kw)
            self.batch_seconds, self.dev_wer = batch_seconds, dev_wer

        def evaluation_loop(self, dataloader, *args, metric_key_prefix="eval", **kw):
            """Dev loss, and with `dev_wer` the dev set decoded and scored by sbasr: the
            pooled CER/WER, which then picks the best checkpoint (a loss that keeps
            falling on a small set says little about what the model writes). Added here,
            inside the loop, so that callbacks and the best-checkpoint choice see it."""
            output = super().evaluation_loop(
                dataloader, *args, metric_key_prefix=metric_key_prefix, **kw
            )
            dataset = getattr(dataloader, "dataset", None) or self.eval_dataset
            if self.dev_wer and dataset is not None:
                model = self.accelerator.unwrap_model(self.model)
                rates = dev_error_rates(model, dataset)
                output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in rates.items()})
            return output

        def _loader(self, dataset, shuffle: bool) -> DataLoader:
            durations = [ex.duration or 0.0 for ex in dataset.examples]
            sampler = SecondsBatchSampler(
                durations,
                self.batch_seconds,
                self.args.per_device_train_batch_size,
                self.args.seed,
                shuffle,
                positions=dataset.positions(),
            )
            loader = DataLoader(
                dataset,
                batch_sampler=sampler,
                collate_fn=self.data_collator,
                num_workers=self.args.dataloader_num_workers,
            )
            return self.accelerator.prepare(loader)

        def get_train_dataloader(self) -> DataLoader:
            return self._loader(self.train_dataset, shuffle=True)

        def get_eval_dataloader(self, eval_dataset=None) -> DataLoader:
            return self._loader(eval_dataset or self.eval_dataset, shuffle=False)

        def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
            if self.args.should_save:  # checkpoints too come here, on every process
                self.accelerator.unwrap_model(self.model).save(output_dir or self.args.output_dir)

        # Kept private: train(resume_from_checkpoint=...) always loads the weights through
        # this hook, and the Trainer's own only reads full state dicts and peft models.
        def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
            target = self.accelerator.unwrap_model(model or self.model)
            target.load_trained(*read_trained(resume_from_checkpoint))

    class LoadBest(TrainerCallback):
        """The best checkpoint's trained weights put back at the end of training (in place
        of load_best_model_at_end, whose loader expects full state dicts)."""

        def on_train_end(self, args, state, control, model=None, **kwargs):
            if state.best_model_checkpoint is not None:
                model.load_trained(*read_trained(state.best_model_checkpoint))

    class StopWhenNoBetter(TrainerCallback):
        """Stops after `patience` evaluations without a better dev score. Not the
        transformers EarlyStoppingCallback: that one requires load_best_model_at_end,
        which LoadBest replaces here."""

        def __init__(self, patience: int) -> None:
            self.patience, self.best, self.waited = patience, None, 0

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            value = (metrics or {}).get(f"eval_{args.metric_for_best_model}")
            if value is None:
                return
            if self.best is None or value < self.best:
                self.best, self.waited = value, 0
            else:
                self.waited += 1
                control.should_training_stop = self.waited >= self.patience

    return SpeechLLMTrainer, LoadBest, StopWhenNoBetter


def finetune_speechllm(opts: SpeechLLMOptions, echo=print, callbacks=()) -> Path:
    """Run the asked stages one after the other; returns the final model's directory."""
    from transformers import set_seed

    out = Path(opts.output_dir)
    stages = tuple(sorted(set(opts.stages)))
    if not stages or any(s not in (1, 2) for s in stages):
        raise SbasrError(f"stages {opts.stages}: use 1, 2 or 1,2")
    try:
        check_choices(opts)
    except ValueError as e:
        raise SbasrError(str(e)) from None
    if "{language}" not in opts.prompt:
        raise SbasrError("the prompt must contain {language}")
    prepare_output(opts, stages, echo)
    set_seed(opts.seed)
    # the Speech-LLM is prompted with each row's language: rows without one are skipped
    train, dev = load_data(opts, echo, need_language=True)
    model = _initial_model(opts, stages, echo)
    for stage in stages:
        stage_dir = out / f"stage{stage}"
        if opts.resume and (stage_dir / CONFIG_NAME).is_file():
            echo(f"stage {stage}: already done, loading {stage_dir}")
            model.set_stage(stage)  # stage 2 adds the LLM's LoRA, which it saved
            model.load_trained(*read_trained(stage_dir))
            continue
        _train_stage(model, stage, stage_dir, train, dev, opts, echo, callbacks)
    if not is_main_process():  # under torchrun, the first process writes
        return out
    if opts.rescore:  # the weight of Whisper's score, chosen on the dev set
        from ..training.rescore_weight import choose_rescore_weight

        choose_rescore_weight(model, dev, opts.nbest, echo)
    from .sources import bundle

    bundle(model.spec, out)  # the Whisper models it needs, kept inside it
    model.save(out)
    plot = out / f"stage{stages[-1]}" / "training.png"
    if plot.is_file():
        shutil.copy2(plot, out / "training.png")
    return out


def prepare_output(opts: SpeechLLMOptions, stages: tuple[int, ...], echo=print) -> None:
    """Check the output directory before anything is loaded. The stages to train must not
    hold an earlier run's output (checkpoints, a finished stage) unless --resume or
    --overwrite says what to do with it; an earlier stage another run left is what a later
    stage starts from (`--stages 2` after `--stages 1`). A folder that is no Speech-LLM
    run at all is refused unless --overwrite."""
    out = Path(opts.output_dir)
    check_not_a_file(out)
    if opts.resume and opts.overwrite:
        raise SbasrError("--resume goes on from the earlier run, --overwrite replaces it: give one")
    if not opts.resume:
        # a stage trained anew makes the stages after it stale too
        ours = [out / f"stage{s}" for s in (1, 2) if s >= stages[0]]
        busy = [d for d in ours if contents(d)]
        run = (out / CONFIG_NAME).is_file() or any((out / f"stage{s}").is_dir() for s in (1, 2))
        foreign = bool(contents(out)) and not run
        if foreign and not opts.overwrite:
            raise refuse_earlier_run(out, "other files")
        if busy and not opts.overwrite:
            kind = "checkpoints" if any(checkpoints(d) for d in busy) else "output"
            raise SbasrError(
                f"{busy[0]}: holds {kind} of an earlier run; use --resume to go on from it, "
                "--overwrite to train anew, or another --output-dir"
            )
        for d in busy:
            if not (d / RUN_CONFIG).is_file():
                raise SbasrError(f"{d}: not written by sbasr; move it away or use another -o")
        if is_main_process():
            for d in busy:
                shutil.rmtree(d)
            if busy:
                echo(f"--overwrite: removed {', '.join(d.name for d in busy)} of the earlier run")
    ensure_writable_dir(out)


def _initial_model(opts: SpeechLLMOptions, stages: tuple[int, ...], echo) -> SpeechLLM:
    """A fresh model for stage 1; for stage 2 alone, the stage-1 model it starts from."""
    if stages[0] == 1:
        from .stacking import stacked_config

        config = opts.model_config()
        config = replace(
            config,
            encoder2=_absolute(config.encoder2),
            llm=_absolute(config.llm),
            hypothesis_model=_absolute(config.hypothesis_model),
        )
        return SpeechLLM.build(stacked_config(config, echo))
    init = Path(opts.init) if opts.init else Path(opts.output_dir) / "stage1"
    if not (init / CONFIG_NAME).is_file():
        raise SbasrError(
            f"{init}: no stage-1 model to start stage 2 from; run --stages 1,2, "
            "or give --init a stage-1 output directory"
        )
    echo(f"stage 2 starts from {init}")
    return SpeechLLM.load(init)


def _absolute(source: str | None) -> str | None:
    """Local paths are stored absolute, so that the saved model finds them from anywhere."""
    if source is None:
        return None
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


def _train_stage(
    model: SpeechLLM,
    stage: int,
    stage_dir: Path,
    train: list[Example],
    dev: list[Example],
    opts: SpeechLLMOptions,
    echo,
    callbacks,
) -> None:
    model.set_stage(stage)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    echo(f"stage {stage}: training {trained / 1e6:.2f} M parameters")
    keep = None if opts.average_best > 1 else opts.save_total_limit  # all, until N best known
    stage_opts = replace(opts.for_stage(stage), output_dir=str(stage_dir), save_total_limit=keep)
    # dev loss only: no logits gathered over the vocabulary
    metric = opts.select_by
    args = training_arguments(
        stage_opts, metric, bool(dev), load_best=False, prediction_loss_only=True
    )
    resume_from = None
    if opts.resume:  # the last complete checkpoint; incomplete ones are skipped, and said
        resume_from = last_checkpoint(stage_dir, lambda m: echo(f"stage {stage}: {m}"))
    if resume_from:
        echo(f"stage {stage}: resuming from {resume_from}")
    cache = _encoder_cache(model, opts)
    hyps = _hypotheses(model, train + dev, echo) if model.spec.hypothesis else None
    train_set = SpeechLLMDataset(train, model, opts, cache=cache, hypotheses=hyps)
    dev_set = SpeechLLMDataset(dev, model, opts, False, cache, hyps) if dev else None
    from .diagnostics import FusionDiagnostics

    trainer_class, load_best, stop_when_no_better = _trainer_class()
    stopping = [stop_when_no_better(opts.patience)] if opts.patience and dev else []
    trainer = trainer_class(
        model=model,
        args=args,
        data_collator=collate,
        train_dataset=train_set,
        eval_dataset=dev_set,
        callbacks=[
            *callbacks,
            load_best(),
            *stopping,
            FusionDiagnostics(),  # before the TensorBoard callback, which writes what it adds
            tensorboard(stage_dir / "logs"),
        ],
        batch_seconds=opts.batch_seconds,
        dev_wer=metric == "wer",
    )
    if trainer.is_world_process_zero():
        save_config(
            opts.for_stage(stage),
            stage_dir / "sbasr-finetune.json",
            arch="speechllm",
            stage=stage,
            train_examples=len(train),
            dev_examples=len(dev),
            world_size=trainer.accelerator.num_processes,
        )
    if cache is not None:  # on the device the Trainer put the model on
        for dataset in (train_set, dev_set):
            if dataset is not None:
                fill_cache(model, dataset, echo=echo)
    with quiet_checkpoint_order(), training_attention(model, trainer.args.device):
        trainer.train(resume_from_checkpoint=resume_from)
    if opts.average_best > 1 and dev:
        best = _best_checkpoints(trainer.state.log_history, stage_dir, opts.average_best, metric)
        if len(best) > 1:
            echo(f"stage {stage}: averaging {', '.join(p.name for p in best)}")
            model.load_trained(*average_trained(best))
    if not trainer.is_world_process_zero():
        return
    if metric == "wer" and trainer.state.best_metric is not None:
        model.spec.dev_wer = float(trainer.state.best_metric)  # the engine warns when poor
    model.mark_done(stage)
    trainer.save_state()
    plot_history(trainer.state.log_history, stage_dir / "training.png", metric)
    failures = trainer.train_dataset.failures
    if failures:
        echo(f"stage {stage}: skipped {len(failures)} examples whose audio failed to load")
    model.save(stage_dir)  # marks the stage done, for --resume


@contextmanager
def training_attention(model: SpeechLLM, device):
    """The LLM's plain (eager) attention while it trains on a CPU. torch's fused
    attention is as fast there for decoding, but with its backward pass on rows of a
    hundred positions a bf16 stage-2 step took a third longer; on GPUs it stays."""
    llm = model.llm.get_base_model() if hasattr(model.llm, "get_base_model") else model.llm
    before = llm.config._attn_implementation
    switch = getattr(device, "type", device) == "cpu" and before == "sdpa"
    if switch:
        llm.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            llm.set_attn_implementation(before)


def _hypotheses(model: SpeechLLM, examples: list[Example], echo) -> dict[Example, str]:
    """Whisper's transcript of every example, decoded once (cached across stages and runs)
    by the engine the Speech-LLM engine uses at transcription."""
    from ..asr.engines.whisper import WhisperEngine
    from ..asr.options import EngineSettings
    from .hypotheses import cached_hypotheses

    source = model.spec.hypothesis_model or model.spec.encoder
    device = "cuda" if next(model.projector.parameters()).is_cuda else "cpu"
    if model.spec.nbest_prompt > 1:  # correction over the N-best list
        from .nbest import cached_nbest, nbest_prompt_text

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


def _encoder_cache(model: SpeechLLM, opts: SpeechLLMOptions) -> EncoderCache | None:
    """The cache of encoder outputs, when the encoders are frozen and it is not off."""
    if opts.encoder_cache == "off" or model.spec.train_encoder != "frozen":
        return None
    directory = Path(opts.encoder_cache_dir) if opts.encoder_cache_dir else None
    return EncoderCache(model.encoder_identity(), directory)


def _best_checkpoints(
    history: list[dict], stage_dir: Path, n: int, metric: str = "loss"
) -> list[Path]:
    """The n checkpoints with the lowest dev `metric` that are still on disk: by dev WER,
    checkpoints from before the model converged are never among them."""
    key = f"eval_{metric}"
    scored = sorted((h[key], h["step"]) for h in history if key in h)
    out = []
    for _, step in scored:
        path = stage_dir / f"checkpoint-{step}"
        if path.is_dir() and path not in out:
            out.append(path)
        if len(out) == n:
            break
    return out
