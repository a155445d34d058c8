"""What a training run leaves beside its model for people to read: the resolved
configuration and a plot of loss and dev error."""

from __future__ import annotations

import json
from pathlib import Path

from ..io.files import write_atomic
from .options import TrainOptions


def save_config(opts: TrainOptions, path: Path, **more: object) -> None:
    write_atomic(path, json.dumps({**opts.to_dict(), **more}, indent=2, default=str) + "\n")


def plot_history(history: list[dict], path: Path, metric: str) -> Path | None:
    """Training loss and dev error over steps, as a PNG beside the model."""
    # A Figure of its own rather than pyplot with matplotlib.use("Agg"), which would
    # switch the backend of the whole process (a notebook's inline plots included).
    from matplotlib.figure import Figure

    loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    scale, label = (1, "dev loss") if metric == "loss" else (100, f"dev {metric.upper()} (%)")
    dev = [(h["step"], scale * h[f"eval_{metric}"]) for h in history if f"eval_{metric}" in h]
    if not loss and not dev:
        return None
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.set_xlabel("step")
    # a run shorter than --logging-steps has no training loss: no empty axis or legend
    if loss:
        ax.plot(
            *zip(*loss), "o-" if len(loss) == 1 else "-", label="training loss", color="tab:blue"
        )
        ax.set_ylabel("loss")
        ax.legend(loc="upper left")
    if dev:
        ax2 = ax.twinx() if loss else ax
        ax2.plot(*zip(*dev), "o-", label=label, color="tab:red")
        ax2.set_ylabel(label)
        ax2.legend(loc="upper right")
    ax.set_title("sbasr finetune")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
