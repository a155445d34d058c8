"""Silencing, where they arise, the library messages a user of sbasr cannot act on.

Each is named exactly and silenced only around the call that raises it: no process-wide
filter, so a caller's own warnings and sbasr's messages are never hidden.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# peft reads transformers' deprecated `is_gradient_checkpointing` when it wraps a model
_PEFT_FUTURE = r"`is_gradient_checkpointing` is deprecated"
# Whisper's own generate() hands its suppress-token settings back to the generic one
_WHISPER_GENERATE = "Passing `generation_config` together with generation-related arguments"


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Around wrapping a model with peft (get_peft_model, PeftModel.from_pretrained)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PEFT_FUTURE, category=FutureWarning)
        yield


# peft, saving an adapter whose base is an embedded model ("base"), asks the hub whether
# the base's config exists (to tell whether the vocabulary grew: it never does here) and
# warns twice when offline
_PEFT_LOOKUP = (r"Unable to fetch remote file", r"Could not find a config file in ")


@contextmanager
def quiet_adapter_save() -> Iterator[None]:
    """Around saving a peft adapter (Trainer.train's checkpoints, save_model)."""
    with warnings.catch_warnings():
        for message in _PEFT_LOOKUP:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """transformers' progress bars off (its "Loading weights" bar of every
    from_pretrained), restored after."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@contextmanager
def quiet_logger(name: str, *fragments: str) -> Iterator[None]:
    """Drop the records of logger `name` whose message holds one of `fragments`."""
    logger = logging.getLogger(name)

    def keep(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(f in message for f in fragments)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def quiet_whisper_generate():
    """Around WhisperForConditionalGeneration.generate."""
    return quiet_logger("transformers.generation.utils", _WHISPER_GENERATE)


def quiet_checkpoint_order():
    """Around Trainer.train: when two checkpoints are saved within the same second (short
    runs), the Trainer says it orders them by step instead of mtime, which is right."""
    return quiet_logger("transformers.trainer_utils", "mtime may not be reliable")
