"""What every training run is set with, whatever the architecture.

Torch-free: `sbasr finetune`'s flags are derived from these fields at parse time. Each
architecture's class (`sbasr.training.whisper_options`, `sbasr.training.speechllm_options`)
adds its own fields and overrides the defaults that differ (batch size, scheduler).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..core.choices import PRECISIONS
from ..core.constants import DEFAULT_WHISPER_MODEL
from ..core.options import option


@dataclass(kw_only=True)
class TrainOptions:
    """The training loop's settings; each architecture adds its own."""

    train: str = option(help="Manifest (.jsonl), MLC-SLM directory or Kaldi data dir.", path=True)
    dev: str | None = option(None, "Dev data, same formats.", path=True)
    output_dir: str = option(help="Where it all goes.", flags=("--output-dir", "-o"), path=True)
    model: str = option(
        DEFAULT_WHISPER_MODEL,
        "Whisper (speechllm: its encoder): base, tiny.en, a transformers directory or a hub id.",
        flags=("--model", "-m"),
    )
    learning_rate: float = option(1e-4, "Peak learning rate.")
    warmup_steps: int = option(100, "Steps of linear warm-up.", min=0)
    lr_scheduler: str = option("linear", "A transformers scheduler type, e.g. inverse_sqrt.")
    epochs: float = option(3.0, "Passes over the data.")
    max_steps: int = option(-1, "Stop after this many steps (> 0 overrides epochs).")
    batch_size: int = option(8, "Utterances per device batch (speechllm: at most).", min=1)
    grad_accum: int = option(1, "Gradient accumulation.", min=1)
    eval_steps: int = option(200, "Score the dev set every N.", min=1)
    # default: eval_steps, so that the best checkpoint is on disk
    save_steps: int | None = option(None, "Checkpoint every N (default: eval steps).")
    logging_steps: int = option(10, "Log the training loss every N.", min=1)
    save_total_limit: int | None = option(3, "Checkpoints kept (the best one too).", cli=False)
    seed: int = option(0, "Seed of the initialisation, the order and the augmentation.")
    precision: str = option("auto", "auto: what the device has.", choices=PRECISIONS)
    gradient_checkpointing: bool = option(False, "Trade compute for memory.")
    speed_perturb: tuple[float, ...] = option((), "Speed factors to draw from, e.g. 0.9,1.0,1.1.")
    resume: bool = option(False, "Go on from the last complete checkpoint.")
    overwrite: bool = option(
        False,
        "Train anew in an --output-dir that holds an earlier run or other files (the "
        "earlier run's checkpoints, model and export are replaced, nothing else).",
    )
    deepspeed: str | None = option(None, "A DeepSpeed config (JSON).", path=True)
    num_workers: int = option(0, "Data loader processes.", min=0)

    def to_dict(self) -> dict:
        return asdict(self)
