"""How sbasr drives the transformers Trainer, whatever the architecture: its arguments,
each run's TensorBoard log, and the checkpoint to resume from."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from .options import TrainOptions

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# what a checkpoint's weights are saved as: transformers, peft, sbasr's Speech-LLM (its own
# model.safetensors), sharded; DeepSpeed and FSDP write folders of their own
_WEIGHTS = (
    "model.safetensors",
    "adapter_model.safetensors",
    "pytorch_model.bin",
    "adapter_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
_WEIGHT_DIRS = ("global_step", "pytorch_model_fsdp")


def precision_flags(precision: str) -> dict:
    """fp16/bf16 where the device has them ("auto": bf16 on recent GPUs, else fp16 on
    GPUs, full precision on CPU)."""
    import torch

    if precision == "fp32":
        return {}
    if precision == "fp16":
        return {"fp16": True}
    if precision == "bf16":
        # bf16 autocast on a CPU (fast with AVX-512 BF16) needs the Trainer told that it
        # runs there
        return {"bf16": True} if torch.cuda.is_available() else {"bf16": True, "use_cpu": True}
    if torch.cuda.is_available():
        return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}
    return {}


def training_arguments(
    opts: TrainOptions, metric: str, has_dev: bool, load_best: bool = True, **more: object
):
    """Seq2SeqTrainingArguments for `opts` (and `more` of them); the best checkpoint is
    chosen by `metric`, and the Trainer loads it at the end when `load_best` (else the
    caller does). Nothing is reported through transformers' integrations: pass
    `tensorboard(...)` as a callback."""
    from transformers import Seq2SeqTrainingArguments

    save_steps = opts.save_steps or opts.eval_steps
    cuda = _has_cuda()
    distributed = {}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not cuda:
        # torchrun on CPUs: NCCL needs GPUs, and accelerate only spreads over CPU
        # processes when told it runs on the CPU
        distributed.update(ddp_backend="gloo", use_cpu=True)
    return Seq2SeqTrainingArguments(
        output_dir=opts.output_dir,
        learning_rate=opts.learning_rate,
        lr_scheduler_type=opts.lr_scheduler,
        warmup_steps=opts.warmup_steps,
        num_train_epochs=opts.epochs,
        max_steps=opts.max_steps,
        per_device_train_batch_size=opts.batch_size,
        per_device_eval_batch_size=opts.batch_size,
        gradient_accumulation_steps=opts.grad_accum,
        eval_strategy="steps" if has_dev else "no",
        eval_steps=opts.eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=opts.save_total_limit,
        load_best_model_at_end=has_dev and load_best,
        metric_for_best_model=metric if has_dev else None,
        greater_is_better=False,
        logging_steps=opts.logging_steps,
        report_to="none",
        # a progress bar redrawn in a log file is escape codes: off unless on a terminal
        disable_tqdm=not _on_terminal(),
        seed=opts.seed,
        data_seed=opts.seed,
        **_checkpointing(Seq2SeqTrainingArguments, opts.gradient_checkpointing),
        remove_unused_columns=False,
        dataloader_pin_memory=cuda,  # pinned memory only helps copies to a GPU
        dataloader_num_workers=opts.num_workers,
        deepspeed=opts.deepspeed,
        ddp_find_unused_parameters=False,
        label_names=["labels"],
        **{**precision_flags(opts.precision), **distributed},
        **more,
    )


def _on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def _checkpointing(args_class: type, on: bool) -> dict:
    """Activation (gradient) checkpointing under the name this transformers takes (5.x
    renamed it and warns at the old one), non-reentrant said explicitly, as torch asks."""
    names = {f.name for f in fields(args_class)}
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )
    if not on:
        return {name: False}
    return {name: True, f"{name}_kwargs": {"use_reentrant": False}}


def tensorboard(log_dir: Path):
    """A TrainerCallback that writes this run's TensorBoard events to `log_dir`.

    One per run, with its own writer, instead of transformers' report_to, whose callback
    takes its directory from the TENSORBOARD_LOGGING_DIR environment variable: set once
    per process, it sent a second stage's or a second run's logs into the first one's.
    """
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    # Only the main process logs (the callback ignores the others): no writer, and so no
    # event file, for them. The Trainer is not built yet, so its rank comes from torchrun.
    main = int(os.environ.get("RANK", "0")) == 0
    return TensorBoardCallback(tb_writer=SummaryWriter(str(log_dir)) if main else None)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """The `checkpoint-N` folders of a run, by step, complete or not."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [
        (int(m[1]), p) for p in root.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir()
    ]
    return [p for _, p in sorted(found)]


def incomplete(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None when it is complete.

    The Trainer writes trainer_state.json last, after the weights, optimizer, scheduler and
    RNG states: a run killed while saving leaves it missing (or cut short)."""
    state = checkpoint / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        json.loads(state.read_text("utf-8"))
    except (OSError, ValueError):
        return "trainer_state.json cut short"
    has_weights = any((checkpoint / name).is_file() for name in _WEIGHTS) or any(
        p.is_dir() and p.name.startswith(_WEIGHT_DIRS) for p in checkpoint.iterdir()
    )
    return None if has_weights else "no weights"


def last_checkpoint(
    output_dir: str | os.PathLike[str], echo: Callable[[str], object] | None = None
) -> str | None:
    """The last complete checkpoint of a run; newer incomplete ones (a run killed while it
    saved one) are skipped, and `echo` is told so in one line."""
    skipped = []
    for path in reversed(checkpoints(output_dir)):
        why = incomplete(path)
        if why is None:
            if skipped and echo is not None:
                echo(_skipped_line(skipped))
            return str(path)
        skipped.append((path, why))
    if skipped and echo is not None:
        echo(_skipped_line(skipped))
    return None


def _skipped_line(skipped: list[tuple[Path, str]]) -> str:
    names = ", ".join(f"{p.name} ({why})" for p, why in reversed(skipped))
    plural = "s" if len(skipped) > 1 else ""
    return f"skipped incomplete checkpoint{plural} {names}, left by a run stopped while saving"
