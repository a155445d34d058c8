"""How sbasr drives the transformers Trainer, whatever the architecture: its arguments,
each run's TensorBoard log, and the checkpoint to resume from."""

from __future__ import annotations

import os
from pathlib import Path

from .options import TrainOptions


def precision_flags(precision: str) -> dict:
    """fp16/bf16 where the device has them ("auto": bf16 on recent GPUs, else fp16 on
    GPUs, full precision on CPU)."""
    import torch

    if precision == "fp32":
        return {}
    if precision == "fp16":
        return {"fp16": True}
    if precision == "bf16":
        # bf16 autocast on a CPU (2.5x faster Speech-LLM steps with AVX-512 BF16) needs the
        # Trainer told that it runs there
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
    distributed = {}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not _has_cuda():
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
        seed=opts.seed,
        data_seed=opts.seed,
        gradient_checkpointing=opts.gradient_checkpointing,
        remove_unused_columns=False,
        dataloader_num_workers=opts.num_workers,
        deepspeed=opts.deepspeed,
        ddp_find_unused_parameters=False,
        label_names=["labels"],
        **{**precision_flags(opts.precision), **distributed},
        **more,
    )


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


def last_checkpoint(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
