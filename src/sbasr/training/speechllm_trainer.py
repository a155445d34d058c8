"""The transformers Trainer as the Speech-LLM trains under it: batches by seconds of audio,
checkpoints holding only the trained weights, dev error rates as a metric, and the
callbacks that load the best checkpoint and stop early."""

from __future__ import annotations

from contextlib import contextmanager

from ..core.private_hooks import TrainedWeightsTrainer, attention_implementation
from ..speechllm.checkpoint import read_trained
from ..speechllm.model import SpeechLLM
from .sampler import SecondsBatchSampler
from .speechllm_data import dev_error_rates


def trainer_classes():
    """The Trainer subclass and its callbacks, made on first use (transformers imports late).

    Returns:
        (SpeechLLMTrainer, LoadBest, StopWhenNoBetter).
    """
    from torch.utils.data import DataLoader
    from transformers import EarlyStoppingCallback, Trainer, TrainerCallback

    class SpeechLLMTrainer(TrainedWeightsTrainer, Trainer):
        """Batches by seconds of audio; checkpoints hold only what is trained (not the
        frozen encoders and LLM), in the same format as the final model. With `dev_wer`,
        each evaluation also decodes the dev set and scores it with sbasr: the pooled
        CER/WER then picks the best checkpoint (a dev loss that keeps falling on a small
        set says little about what the model writes)."""

        def __init__(self, *args, batch_seconds: float, dev_wer: bool = False, **kw):
            super().__init__(*args, **kw)
            self.batch_seconds, self.dev_wer = batch_seconds, dev_wer

        def load_checkpoint_weights(self, directory: str, model) -> None:
            model.load_trained(*read_trained(directory))

        def extra_eval_metrics(self, model, dataset) -> dict[str, float]:
            return dev_error_rates(model, dataset) if self.dev_wer else {}

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

    class LoadBest(TrainerCallback):
        """The best checkpoint's trained weights put back at the end of training (in place
        of load_best_model_at_end, whose loader expects full state dicts)."""

        def on_train_end(self, args, state, control, model=None, **kwargs):
            if state.best_model_checkpoint is not None:
                model.load_trained(*read_trained(state.best_model_checkpoint))

    class StopWhenNoBetter(EarlyStoppingCallback):
        """transformers' early stopping: after `patience` evaluations without a better
        dev score. Its warning that the best model is not loaded at the end is left out:
        LoadBest loads it."""

        def __init__(self, patience: int) -> None:
            super().__init__(early_stopping_patience=patience)

        def on_train_begin(self, args, state, control, **kwargs):
            if args.metric_for_best_model is None:
                raise ValueError("early stopping needs a metric for the best model")

    return SpeechLLMTrainer, LoadBest, StopWhenNoBetter


@contextmanager
def training_attention(model: SpeechLLM, device):
    """The LLM's plain (eager) attention while it trains on a CPU, and its own again after.

    torch's fused attention is as fast on a CPU for decoding, but slower with its
    backward pass on short rows; on GPUs it stays.

    Args:
        model: The Speech-LLM being trained.
        device: Where it trains (a torch device or its type's name).
    """
    llm = model.llm.get_base_model() if hasattr(model.llm, "get_base_model") else model.llm
    before = attention_implementation(llm)
    switch = getattr(device, "type", device) == "cpu" and before == "sdpa"
    if switch:
        llm.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            llm.set_attn_implementation(before)
