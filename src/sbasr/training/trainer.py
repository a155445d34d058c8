"""What every sbasr training run shares, whatever the architecture: reading and checking
the data, the transformers Trainer's arguments, the resolved configuration, logs and the
plot of loss and dev error."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SbasrError
from ..io.files import write_atomic
from .data import Example, check_examples, load_example_audio, read_examples


@dataclass
class TrainOptions:
    """The training loop's settings; each architecture adds its own."""

    train: str = ""
    dev: str | None = None
    output_dir: str = ""
    learning_rate: float = 1e-4
    warmup_steps: int = 100
    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    grad_accum: int = 1
    eval_steps: int = 200
    save_steps: int | None = None  # default: eval_steps, so the best checkpoint is known
    logging_steps: int = 10
    save_total_limit: int = 3
    seed: int = 0
    precision: str = "auto"  # auto, fp32, fp16, bf16
    gradient_checkpointing: bool = False
    speed_perturb: tuple[float, ...] = ()  # e.g. (0.9, 1.0, 1.1)
    spec_augment: bool = False
    resume: bool = False
    deepspeed: str | None = None
    num_workers: int = 0
    lr_scheduler: str = "linear"  # any transformers scheduler type, e.g. inverse_sqrt
    export: bool = True
    quantization: str = "int8"
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def load_data(opts: TrainOptions, echo=print) -> tuple[list[Example], list[Example]]:
    """Train and dev examples, checked once; the summary goes to `echo`."""
    sets = []
    for name, source in (("train", opts.train), ("dev", opts.dev)):
        if not source:
            sets.append([])
            continue
        kept, report = check_examples(read_examples(source))
        for line in report.lines():
            echo(f"{name}: {line}")
        if not kept:
            raise SbasrError(f"{source}: no usable examples")
        sets.append(kept)
    return sets[0], sets[1]


class AudioDataset:
    """Examples decoded on the fly (speed-perturbed when asked); a row whose audio fails
    is replaced by the next one and counted, so one bad file never stops an epoch.
    Subclasses turn (example, samples) into model inputs."""

    def __init__(self, examples: list[Example], opts: TrainOptions, train: bool = True) -> None:
        self.examples, self.opts, self.train = examples, opts, train
        self.failures: set[str] = set()

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        for step in range(len(self.examples)):
            ex = self.examples[(index + step) % len(self.examples)]
            try:
                audio = load_example_audio(ex)
            except Exception:  # unreadable now though it probed fine: skip, count
                self.failures.add(ex.id)
                continue
            return self.features(ex, self._perturbed(index, audio))
        raise SbasrError("no example's audio could be read")

    def _perturbed(self, index: int, audio: np.ndarray) -> np.ndarray:
        if not (self.train and self.opts.speed_perturb):
            return audio
        import random

        from ..io.audio import SAMPLE_RATE, resample

        # Seeded by example, so that a resumed run sees the very same batches.
        rng = random.Random(self.opts.seed * 1_000_003 + index)
        return resample(audio, SAMPLE_RATE * rng.choice(self.opts.speed_perturb))

    def features(self, ex: Example, audio: np.ndarray) -> dict:
        raise NotImplementedError


def precision_flags(precision: str) -> dict:
    """fp16/bf16 where the device has them ("auto": bf16 on recent GPUs, else fp16 on
    GPUs, full precision on CPU)."""
    import torch

    if precision == "fp32":
        return {}
    if precision == "fp16":
        return {"fp16": True}
    if precision == "bf16":
        return {"bf16": True}
    if torch.cuda.is_available():
        return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}
    return {}


def training_arguments(opts: TrainOptions, metric: str, has_dev: bool):
    """Seq2SeqTrainingArguments for `opts`; the best checkpoint is chosen by `metric`."""
    from transformers import Seq2SeqTrainingArguments

    out = Path(opts.output_dir)
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(out / "logs"))
    save_steps = opts.save_steps or opts.eval_steps
    distributed = {}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not _has_cuda():
        # torchrun on CPUs: NCCL needs GPUs, and accelerate only spreads over CPU
        # processes when told it runs on the CPU
        distributed.update(ddp_backend="gloo", use_cpu=True)
    return Seq2SeqTrainingArguments(
        output_dir=str(out),
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
        load_best_model_at_end=has_dev,
        metric_for_best_model=metric if has_dev else None,
        greater_is_better=False,
        logging_steps=opts.logging_steps,
        report_to=["tensorboard"],
        seed=opts.seed,
        data_seed=opts.seed,
        gradient_checkpointing=opts.gradient_checkpointing,
        remove_unused_columns=False,
        dataloader_num_workers=opts.num_workers,
        deepspeed=opts.deepspeed,
        ddp_find_unused_parameters=False,
        label_names=["labels"],
        **precision_flags(opts.precision),
        **distributed,
    )


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def last_checkpoint(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None


def save_config(opts: TrainOptions, path: Path, **more: object) -> None:
    write_atomic(path, json.dumps({**opts.to_dict(), **more}, indent=2, default=str) + "\n")


def plot_history(history: list[dict], path: Path, metric: str) -> Path | None:
    """Training loss and dev error over steps, as a PNG beside the model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    scale, label = (1, "dev loss") if metric == "loss" else (100, f"dev {metric.upper()} (%)")
    dev = [(h["step"], scale * h[f"eval_{metric}"]) for h in history if f"eval_{metric}" in h]
    if not loss and not dev:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    if loss:
        ax.plot(*zip(*loss), label="training loss", color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if dev:
        ax2 = ax.twinx()
        ax2.plot(*zip(*dev), "o-", label=label, color="tab:red")
        ax2.set_ylabel(label)
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    ax.set_title("sbasr finetune")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
