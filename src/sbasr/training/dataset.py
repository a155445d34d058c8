"""Training data as the Trainer takes it: examples read and checked once, and decoded on
the fly (speed-perturbed when asked)."""

from __future__ import annotations

import numpy as np

from ..core.errors import SbasrError
from .data import Example, check_examples, load_example_audio, read_examples, row_locator
from .options import TrainOptions


def load_data(
    opts: TrainOptions, echo=print, need_language: bool = False
) -> tuple[list[Example], list[Example]]:
    """Train and dev examples, checked once, before any model is loaded; the summary goes
    to `echo`. With `need_language` (a model prompted with the language), rows without
    one are skipped and counted like the other bad rows."""
    sets = []
    for name, source in (("train", opts.train), ("dev", opts.dev)):
        if not source:
            sets.append([])
            continue
        examples = read_examples(source)
        kept, report = check_examples(examples, need_language, row_locator(source))
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
            return self.item(ex, audio, self.speed_of(index))
        raise SbasrError("no example's audio could be read")

    def speed_of(self, index: int) -> float:
        """The speed factor example `index` is perturbed with: drawn once per example from
        the seed, so that a resumed run (and a cache of its features) sees the same."""
        if not (self.train and self.opts.speed_perturb):
            return 1.0
        import random

        rng = random.Random(self.opts.seed * 1_000_003 + index)
        return rng.choice(self.opts.speed_perturb)

    def item(self, ex: Example, audio: np.ndarray, speed: float) -> dict:
        """Model inputs of one example from its unperturbed samples; subclasses that can
        reuse work across epochs (cached encoder outputs) override this."""
        return self.features(ex, perturb(audio, speed))

    def features(self, ex: Example, audio: np.ndarray) -> dict:
        raise NotImplementedError


def perturb(audio: np.ndarray, speed: float) -> np.ndarray:
    """`audio` played `speed` times faster (resampled), the usual speed perturbation."""
    if speed == 1.0:
        return audio
    from ..io.audio import SAMPLE_RATE, resample

    return resample(audio, SAMPLE_RATE * speed)
