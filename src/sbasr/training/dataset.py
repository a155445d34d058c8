"""Training data as the Trainer takes it: examples read and checked once, and decoded on
the fly (speed-perturbed when asked)."""

from __future__ import annotations

import numpy as np

from ..errors import SbasrError
from .data import Example, check_examples, load_example_audio, read_examples
from .options import TrainOptions


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
