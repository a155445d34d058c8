"""Fine-tuning Whisper end to end, with LoRA or in full, under the transformers Trainer.

Labels follow the paper: <|startoftranscript|><|lang|><|transcribe|><|notimestamps|> text
<|endoftext|>. The dev set is decoded and scored with sbasr's own scorer, and the best
checkpoint by pooled CER/WER is kept; the result is exported to CTranslate2 so that the
output directory itself works as `sbasr transcribe --model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.constants import DEV_DECODE_MAX_LENGTH, SAMPLE_RATE, WHISPER_MAX_POSITIONS
from ..core.errors import SbasrError
from ..core.options import check_choices
from ..core.quiet import (
    quiet_adapter_save,
    quiet_checkpoint_order,
    quiet_peft,
    quiet_whisper_generate,
)
from ..whisper.models import EMBEDDED
from .arguments import checkpoints, last_checkpoint, tensorboard, training_arguments
from .data import Example, error_rates, load_example_audio
from .dataset import AudioDataset, load_data
from .layer_lr import check_layer_lr_decay, layer_lr_groups
from .output import (
    RUN_CONFIG,
    check_not_a_file,
    contents,
    ensure_writable_dir,
    is_main_process,
    refuse_earlier_run,
    remove_checkpoints,
)
from .record import plot_history, save_config
from .whisper_options import WhisperOptions

if TYPE_CHECKING:
    from torch import nn

METRIC = "wer"  # the pooled CER/WER, under the name the Trainer tracks


class WhisperDataset(AudioDataset):
    """Examples as Whisper inputs: log-mel features and prefixed labels."""

    def __init__(
        self, examples: list[Example], processor, prefixes, opts: WhisperOptions, train: bool = True
    ) -> None:
        super().__init__(examples, opts, train)
        self.processor, self.prefixes = processor, prefixes

    def features(self, ex: Example, audio: np.ndarray) -> dict:
        feats = self.processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE).input_features[0]
        tokenizer = self.processor.tokenizer
        text_ids = tokenizer.encode(" " + ex.text.strip(), add_special_tokens=False)
        eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        # The model prepends <|startoftranscript|> itself (decoder_start_token_id).
        labels = [*self.prefixes(ex.language), *text_ids, eot][: WHISPER_MAX_POSITIONS - 1]
        return {"input_features": feats, "labels": labels}


def collate(items: list[dict]) -> dict:
    import torch

    width = max(len(i["labels"]) for i in items)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    for row, item in enumerate(items):
        labels[row, : len(item["labels"])] = torch.tensor(item["labels"])
    feats = torch.from_numpy(np.stack([i["input_features"] for i in items]))
    return {"input_features": feats, "labels": labels}


def is_multilingual(base: str) -> bool:
    """Whether the Whisper model at `base` is prompted with a language, read from its
    generation settings alone (as the loaded model reads them), before any weights load."""
    from transformers import GenerationConfig

    try:
        generation = GenerationConfig.from_pretrained(base)
    except OSError:  # none saved: the model's generation config has no such flag either
        return False
    return bool(getattr(generation, "is_multilingual", False))


def _prefix_builder(tokenizer, multilingual: bool):
    """Token ids after <|startoftranscript|>: language (multilingual models), task, and
    <|notimestamps|>."""
    ids = tokenizer.convert_tokens_to_ids
    task, no_ts = ids("<|transcribe|>"), ids("<|notimestamps|>")

    def prefix(language: str | None) -> list[int]:
        if not multilingual:
            return [no_ts]
        if language is None:
            raise SbasrError("a multilingual model needs each example's language")
        return [ids(f"<|{language}|>"), task, no_ts]

    return prefix


def load_model(opts: WhisperOptions, base: str | None = None):
    """The model to train, with LoRA applied or the encoder frozen as asked; `base` is
    where transformers loads `opts.model` from (`transformers_model`)."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from ..whisper.models import transformers_model

    base = base or transformers_model(opts.model)
    processor = WhisperProcessor.from_pretrained(base)
    model = WhisperForConditionalGeneration.from_pretrained(base)
    model.config.use_cache = False
    if opts.spec_augment:
        model.config.apply_spec_augment = True
        model.config.mask_time_prob = max(model.config.mask_time_prob, 0.05)
    if opts.freeze_encoder:
        model.model.encoder.requires_grad_(False)
    if opts.method == "lora":
        from peft import LoraConfig, get_peft_model

        targets = list(opts.lora_targets)
        if opts.freeze_encoder:  # LoRA on the decoder only
            targets = rf".*decoder.*\.({'|'.join(opts.lora_targets)})"  # type: ignore[assignment]
        config = LoraConfig(
            r=opts.lora_r,
            lora_alpha=opts.lora_alpha,
            lora_dropout=opts.lora_dropout,
            target_modules=targets,
        )
        with quiet_peft():
            model = get_peft_model(model, config)
        # peft names the base by where it was loaded from (an embedded model's cache copy);
        # the adapter names it as sbasr finds it again, from any directory
        model.peft_config["default"].base_model_name_or_path = _base_name(opts.model)
        if opts.gradient_checkpointing:
            model.enable_input_require_grads()
    return model, processor


def _base_name(model: str) -> str:
    """How a saved adapter names its base: an embedded name or a hub id as given, a local
    directory by its absolute path."""
    path = Path(model).expanduser()
    if model in EMBEDDED or not path.exists():
        return model
    return str(path.resolve())


def decode_examples(model, processor, examples: list[Example], batch_size: int) -> dict[str, str]:
    """Greedy transcripts of `examples`, each in its own language where it has one."""
    import torch

    multilingual = bool(getattr(model.generation_config, "is_multilingual", False))
    out: dict[str, str] = {}
    by_lang: dict[str | None, list[Example]] = {}
    for ex in examples:
        by_lang.setdefault(ex.language if multilingual else None, []).append(ex)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for lang, group in by_lang.items():
            for i in range(0, len(group), batch_size):
                batch = group[i : i + batch_size]
                feats = processor.feature_extractor(
                    [load_example_audio(ex) for ex in batch],
                    sampling_rate=SAMPLE_RATE,
                    return_tensors="pt",
                ).input_features.to(device)
                kwargs = {"language": lang, "task": "transcribe"} if lang else {}
                # every input is a whole 30 s window, as Whisper reads it: all frames count
                mask = torch.ones(feats.shape[0], feats.shape[-1], dtype=torch.long, device=device)
                with torch.no_grad(), quiet_whisper_generate():
                    tokens = model.generate(
                        input_features=feats,
                        attention_mask=mask,
                        num_beams=1,
                        do_sample=False,
                        # max_length, not max_new_tokens: that one clashes with the config's
                        max_length=DEV_DECODE_MAX_LENGTH,
                        **kwargs,
                    )
                texts = processor.batch_decode(tokens, skip_special_tokens=True)
                out.update({ex.id: t.strip() for ex, t in zip(batch, texts)})
    finally:
        model.train(was_training)
    return out


def _trainer_class():
    from torch.optim import Optimizer
    from transformers import Seq2SeqTrainer

    class WhisperTrainer(Seq2SeqTrainer):
        """Evaluation decodes the dev set and scores it with sbasr: the pooled CER/WER
        decides the best checkpoint, per-language rates are logged beside it."""

        def __init__(
            self,
            *args,
            dev_examples=(),
            processor=None,
            eval_batch=8,
            layer_lr_decay: float = 1.0,
            **kwargs,
        ):
            check_layer_lr_decay(layer_lr_decay)
            super().__init__(*args, **kwargs)
            self.dev_examples = list(dev_examples)
            self.processor, self.eval_batch = processor, eval_batch
            self.layer_lr_decay = layer_lr_decay

        def create_optimizer(self, model: nn.Module | None = None) -> Optimizer:
            """The Trainer's optimizer, with one param group per layer depth when
            --layer-lr-decay is below 1; at 1 the Trainer's own, unchanged."""
            if self.layer_lr_decay == 1.0 or self.optimizer is not None:
                return super().create_optimizer(model)
            opt_model = self.model if model is None else model
            optimizer_cls, kwargs = self.optimizer_cls_and_kwargs or (
                self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            )
            # a factory (Muon), or an optimizer that brings its own groups (GaLore, LOMO)
            plain = isinstance(optimizer_cls, type) and issubclass(optimizer_cls, Optimizer)
            if not plain or {"params", "model", "optimizer_dict"} & set(kwargs):
                raise SbasrError(f"--layer-lr-decay does not work with optimizer {self.args.optim}")
            groups = layer_lr_groups(
                opt_model,
                self.get_decay_parameter_names(opt_model),
                self.args.learning_rate,
                self.args.weight_decay,
                self.layer_lr_decay,
            )
            self.optimizer = optimizer_cls(groups, **kwargs)
            return self.optimizer

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval", **kw):
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix, **kw)
            dev = self.dev_examples
            hyps = decode_examples(self.model, self.processor, dev, self.eval_batch)
            rates = error_rates(dev, hyps)
            extra = {f"{metric_key_prefix}_{k}": v for k, v in rates.items()}
            self.log(extra)
            metrics.update(extra)
            return metrics

    return WhisperTrainer


def finetune_whisper(opts: WhisperOptions, echo=print, callbacks=()) -> Path:
    """Fine-tune Whisper: train, keep the best checkpoint, save, plot and export.

    Args:
        opts: The training options.
        echo: Where progress lines go.
        callbacks: transformers `TrainerCallback`s, for callers who watch the run.

    Returns:
        The output directory.

    Raises:
        SbasrError: Bad options, data or output directory.
    """
    from transformers import set_seed

    from ..whisper.models import transformers_model

    try:
        check_choices(opts)
    except ValueError as e:
        raise SbasrError(str(e)) from None
    check_layer_lr_decay(opts.layer_lr_decay)
    out = Path(opts.output_dir)
    resume_from = prepare_output(opts, echo)
    set_seed(opts.seed)
    base = transformers_model(opts.model)
    multilingual = is_multilingual(base)
    # checked before any weights load: rows a multilingual model cannot be prompted for
    # are skipped and counted with the other bad rows
    train, dev = load_data(opts, echo, need_language=multilingual)
    model, processor = load_model(opts, base)
    prefixes = _prefix_builder(processor.tokenizer, multilingual)
    args = training_arguments(opts, METRIC, bool(dev))
    trainer = _trainer_class()(
        model=model,
        args=args,
        data_collator=collate,
        train_dataset=WhisperDataset(train, processor, prefixes, opts),
        eval_dataset=WhisperDataset(dev, processor, prefixes, opts, False) if dev else None,
        dev_examples=dev,
        processor=processor,
        eval_batch=opts.eval_batch_size,
        layer_lr_decay=opts.layer_lr_decay,
        callbacks=[*callbacks, tensorboard(out / "logs")],
    )
    if trainer.is_world_process_zero():
        save_config(
            opts,
            out / RUN_CONFIG,
            arch="whisper",
            train_examples=len(train),
            dev_examples=len(dev),
            world_size=trainer.accelerator.num_processes,
            distributed=str(trainer.accelerator.distributed_type),
        )
    with quiet_checkpoint_order(), quiet_adapter_save():
        trainer.train(resume_from_checkpoint=resume_from)
    if not trainer.is_world_process_zero():
        return out
    with quiet_adapter_save():
        trainer.save_model(str(out))
    trainer.save_state()  # trainer_state.json: history, best checkpoint, run time
    from ..whisper.export import save_processor

    save_processor(processor, out)
    plot_history(trainer.state.log_history, out / "training.png", METRIC)
    failures = trainer.train_dataset.failures
    if failures:
        echo(f"skipped {len(failures)} examples whose audio failed to load during training")
    if opts.export:
        from ..whisper.export import export_ct2

        # a resumed run's export replaces the earlier run's, as --overwrite's does
        overwrite = opts.overwrite or opts.resume
        export_ct2(out, out / "ct2", opts.quantization, overwrite=overwrite)
        echo(f"exported to {out / 'ct2'}")
    return out


# What a run of finetune_whisper writes in its output directory, beside checkpoints, logs
# and the export: with --overwrite these go, so that a LoRA run never leaves an earlier
# full model's weights beside its adapter (or the reverse).
_RUN_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "model.safetensors",
    "model.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "trainer_state.json",
    "training_args.bin",
    "training.png",
    RUN_CONFIG,
)


def prepare_output(opts: WhisperOptions, echo=print) -> str | None:
    """Check the output directory before anything is loaded; returns the checkpoint to
    resume from. An earlier run's output (a finished model, checkpoints) or anyone's
    files are refused unless --resume or --overwrite says what to do with them."""
    out = Path(opts.output_dir)
    check_not_a_file(out)
    if opts.resume and opts.overwrite:
        raise SbasrError("--resume goes on from the earlier run, --overwrite replaces it: give one")
    if opts.resume:
        resume_from = last_checkpoint(out, echo)
        if resume_from is None:
            if checkpoints(out):
                raise SbasrError(
                    f"{out}: no complete checkpoint to resume from; use --overwrite to train anew"
                )
            raise SbasrError(f"{out}: no checkpoint to resume from")
        echo(f"resuming from {resume_from}")
        ensure_writable_dir(out)
        return resume_from
    if contents(out):
        if not opts.overwrite:
            ours = (out / RUN_CONFIG).is_file()
            raise refuse_earlier_run(out, "an earlier run's model" if ours else "other files")
        if is_main_process():
            _clear_earlier_run(out, echo)
    ensure_writable_dir(out)
    return None


def _clear_earlier_run(out: Path, echo) -> None:
    """What an earlier sbasr run left in `out` (its config says there was one), so that
    nothing of it is taken for the new run's; anything else there is kept."""
    if not (out / RUN_CONFIG).is_file():
        return
    from ..whisper.export_target import is_export_of, remove_export

    remove_checkpoints(out)
    if (out / "ct2").is_dir() and is_export_of(out / "ct2", out):
        remove_export(out / "ct2")
    for name in _RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for shard in out.glob("model-*-of-*.safetensors"):
        shard.unlink()
    for events in (out / "logs").glob("events.out.tfevents.*"):
        events.unlink()
    echo(f"--overwrite: removed the earlier run's checkpoints, model and export from {out}")
