"""The transformers Trainer as the Speech-LLM trains under it: batches by seconds of audio,
checkpoints holding only the trained weights, dev error rates as a metric, and the
callbacks that load the best checkpoint and stop early."""

from __future__ import annotations

from contextlib import contextmanager

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
    from transformers import Trainer, TrainerCallback

    class SpeechLLMTrainer(Trainer):
        """Batches by seconds of audio; checkpoints hold only what is trained (a few MB,
        not the frozen encoders and LLM), in the same format as the final model."""

        def __init__(self, *args, batch_seconds: float, dev_wer: bool = False, **kw):
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
