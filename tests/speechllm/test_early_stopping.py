"""Early stopping on the dev score: after `patience` evaluations without a better one,
counted against the best score so far (which the Trainer keeps, and a resumed run
restores)."""

from __future__ import annotations

import pytest

from sbasr.training.speechllm_trainer import trainer_classes


def _run(scores: list[float], patience: int) -> int | None:
    """After how many evaluations of `scores` (dev WER) training stops; None: never."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    _, _, stop_when_no_better = trainer_classes()
    args = TrainingArguments(
        output_dir="unused",
        metric_for_best_model="wer",
        greater_is_better=False,
        eval_strategy="steps",
        report_to=[],
    )
    state, control = TrainerState(), TrainerControl()
    callback = stop_when_no_better(patience)
    callback.on_train_begin(args, state, control)
    for n, value in enumerate(scores, 1):
        callback.on_evaluate(args, state, control, metrics={"eval_wer": value})
        if state.best_metric is None or value < state.best_metric:  # as the Trainer does
            state.best_metric = value
        if control.should_training_stop:
            return n
    return None


@pytest.mark.parametrize(
    ("scores", "patience", "evaluations"),
    [
        ([0.9, 0.8, 0.85, 0.82, 0.7, 0.75, 0.71], 3, None),  # each stall shorter than 3
        ([0.9, 0.8, 0.85, 0.82, 0.81, 0.6], 3, 5),  # three without a better one: stop
        ([0.5, 0.5, 0.6], 1, 2),  # equal is not better
    ],
)
def test_training_stops_after_patience_evaluations_without_a_better_score(
    scores, patience, evaluations
):
    assert _run(scores, patience) == evaluations


def test_early_stopping_needs_a_metric():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    _, _, stop_when_no_better = trainer_classes()
    args = TrainingArguments(output_dir="unused", report_to=[])
    with pytest.raises(ValueError):
        stop_when_no_better(2).on_train_begin(args, TrainerState(), TrainerControl())
