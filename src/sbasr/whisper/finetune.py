"""Fine-tuning Whisper end to end, with LoRA or in full, under the transformers Trainer.

Labels follow the paper: <|startoftranscript|><|lang|><|transcribe|><|notimestamps|> text
<|endoftext|>. The dev set is decoded and scored with sbasr's own scorer, and the best
checkpoint by pooled CER/WER is kept; the result is exported to CTranslate2 so that the
output directory itself works as `sbasr transcribe --model`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SbasrError
from ..options import check_choices
from ..training.arguments import last_checkpoint, tensorboard, training_arguments
from ..training.data import Example, error_rates, load_example_audio
from ..training.dataset import AudioDataset, load_data
from ..training.record import plot_history, save_config
from .options import WhisperOptions

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
        feats = self.processor.feature_extractor(audio, sampling_rate=16_000).input_features[0]
        tokenizer = self.processor.tokenizer
        text_ids = tokenizer.encode(" " + ex.text.strip(), add_special_tokens=False)
        eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        # The model prepends <|startoftranscript|> itself (decoder_start_token_id).
        labels = [*self.prefixes(ex.language), *text_ids, eot][: 448 - 1]
        return {"input_features": feats, "labels": labels}


def collate(items: list[dict]) -> dict:
    import torch

    width = max(len(i["labels"]) for i in items)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    for row, item in enumerate(items):
        labels[row, : len(item["labels"])] = torch.tensor(item["labels"])
    feats = torch.from_numpy(np.stack([i["input_features"] for i in items]))
    return {"input_features": feats, "labels": labels}


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


def load_model(opts: WhisperOptions):
    """The model to train, with LoRA applied or the encoder frozen as asked."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from .models import transformers_model

    base = transformers_model(opts.model)
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
            base_model_name_or_path=opts.model,
        )
        model = get_peft_model(model, config)
        if opts.gradient_checkpointing:
            model.enable_input_require_grads()
    return model, processor


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
                    sampling_rate=16_000,
                    return_tensors="pt",
                ).input_features.to(device)
                kwargs = {"language": lang, "task": "transcribe"} if lang else {}
                with torch.no_grad():
                    tokens = model.generate(
                        input_features=feats,
                        num_beams=1,
                        do_sample=False,
                        max_new_tokens=200,
                        **kwargs,
                    )
                texts = processor.batch_decode(tokens, skip_special_tokens=True)
                out.update({ex.id: t.strip() for ex, t in zip(batch, texts)})
    finally:
        model.train(was_training)
    return out


def check_layer_lr_decay(decay: float) -> None:
    """Refuse a decay outside (0, 1]: 0 would freeze every lower layer, and above 1 the lower
    layers would outpace the top, the reverse of what the option is for."""
    if not 0.0 < decay <= 1.0:
        raise SbasrError(f"--layer-lr-decay {decay}: must be above 0 and at most 1 (1 is off)")


# `encoder.layers.3.` in a plain model's names and inside a PEFT wrapper's alike
_LAYER = re.compile(r"(?:^|\.)(encoder|decoder)\.layers\.(\d+)\.")
# what feeds a stack's layer 0: the conv stem and the token and position embeddings
_STEM = re.compile(r"(?:^|\.)(encoder|decoder)\.(conv1|conv2|embed_positions|embed_tokens)\.")


def layer_depths(names: list[str]) -> dict[str, int]:
    """Each parameter's distance below the top layer of its own stack (encoder or decoder).

    The stem counts as one below layer 0; the final layer norms and anything outside the two
    stacks (the output projection) are at the top, depth 0. The stack sizes are read from the
    names, so that a PEFT-wrapped model and a frozen encoder are counted the same way.
    """
    sizes: dict[str, int] = {}
    for name in names:
        if m := _LAYER.search(name):
            sizes[m[1]] = max(sizes.get(m[1], 0), int(m[2]) + 1)
    depths = {}
    for name in names:
        if m := _LAYER.search(name):
            depths[name] = sizes[m[1]] - 1 - int(m[2])
        elif m := _STEM.search(name):
            depths[name] = sizes.get(m[1], 0)
        else:
            depths[name] = 0
    return depths


def layer_lr_groups(
    model: nn.Module, decay_names: list[str], lr: float, weight_decay: float, decay: float
) -> list[dict]:
    """Optimizer param groups of the trainable parameters, one per (depth, weight decay)
    pair, each with its own "lr" = `lr` * `decay`**depth; the Trainer's schedulers (LambdaLR)
    scale every group from its own initial rate, so the ratios hold through the schedule.
    Weight decay goes to `decay_names` only, as the Trainer does (none for biases and norms).
    """
    named = list(model.named_parameters())
    depths = layer_depths([n for n, _ in named])
    decayed = set(decay_names)
    groups: dict[tuple[int, bool], list] = {}
    for name, param in named:
        if param.requires_grad:
            groups.setdefault((depths[name], name in decayed), []).append(param)
    return [
        {
            "params": params,
            "weight_decay": weight_decay if with_decay else 0.0,
            "lr": lr * decay**depth,
        }
        for (depth, with_decay), params in sorted(groups.items(), key=lambda kv: kv[0])
    ]


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
    """Train, keep the best checkpoint, save, plot and export; returns the output dir.
    `callbacks` are transformers TrainerCallbacks, for callers who watch the run."""
    from transformers import set_seed

    try:
        check_choices(opts)
    except ValueError as e:
        raise SbasrError(str(e)) from None
    check_layer_lr_decay(opts.layer_lr_decay)
    out = Path(opts.output_dir)
    resume_from = None
    if opts.resume:
        resume_from = last_checkpoint(str(out))
        if resume_from is None:
            raise SbasrError(f"{out}: no checkpoint to resume from")
        echo(f"resuming from {resume_from}")
    elif last_checkpoint(str(out)):
        raise SbasrError(
            f"{out}: holds checkpoints of an earlier run; use --resume, or another --output-dir"
        )
    set_seed(opts.seed)
    train, dev = load_data(opts, echo)
    model, processor = load_model(opts)
    multilingual = bool(getattr(model.generation_config, "is_multilingual", False))
    prefixes = _prefix_builder(processor.tokenizer, multilingual)
    if multilingual and any(ex.language is None for ex in train + dev):
        raise SbasrError(
            "some examples have no language; give one in the data (a multilingual "
            "model is prompted with it)"
        )
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
            out / "sbasr-finetune.json",
            arch="whisper",
            train_examples=len(train),
            dev_examples=len(dev),
            world_size=trainer.accelerator.num_processes,
            distributed=str(trainer.accelerator.distributed_type),
        )
    trainer.train(resume_from_checkpoint=resume_from)
    if not trainer.is_world_process_zero():
        return out
    trainer.save_model(str(out))
    trainer.save_state()  # trainer_state.json: history, best checkpoint, run time
    processor.save_pretrained(out)
    plot_history(trainer.state.log_history, out / "training.png", METRIC)
    failures = trainer.train_dataset.failures
    if failures:
        echo(f"skipped {len(failures)} examples whose audio failed to load during training")
    if opts.export:
        from .ct2 import export_ct2

        export_ct2(out, out / "ct2", opts.quantization)
        echo(f"exported to {out / 'ct2'}")
    return out
