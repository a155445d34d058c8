"""Batches bounded by seconds of audio rather than a number of utterances: similar
lengths together, so that little of a batch is padding."""

from __future__ import annotations

import random


class SecondsBatchSampler:
    """Batches of at most `seconds` of audio (and `max_items` utterances): utterances of
    similar length go together, so little of a batch is padding; the order of batches is
    shuffled anew each epoch, from the seed, so that a resumed run sees the same ones.

    With `positions` (each utterance's length in LLM positions: prompt, speech and
    transcript), utterances are sorted by those, and no batch holds more padded positions
    than `POSITION_FACTOR` times the average batch of the same data batched by seconds
    alone. Seconds of audio alone misjudge a batch whose prompt or transcript is long for
    its audio (a short clip whose Whisper hypothesis looped): its padding would make one
    step many times as slow and as large as the rest.
    """

    POSITION_FACTOR = 3

    def __init__(
        self,
        durations: list[float],
        seconds: float,
        max_items: int,
        seed: int,
        shuffle: bool = True,
        positions: list[int] | None = None,
    ) -> None:
        self.durations, self.seconds, self.max_items = durations, seconds, max_items
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0
        self.positions = positions
        self.max_positions: int | None = None
        if positions:
            plain = self._group(list(range(len(durations))), durations.__getitem__, None)
            padded = [len(b) * max(positions[i] for i in b) for b in plain]
            self.max_positions = int(self.POSITION_FACTOR * sum(padded) / len(padded))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _group(self, order: list[int], key, max_positions: int | None) -> list[list[int]]:
        """`order` cut into batches, each pool of it sorted by `key` first; with
        `max_positions`, no batch's padded positions exceed it."""
        batches: list[list[int]] = []
        pool = 100 * max(1, self.max_items)  # sort within pools: similar lengths, still random
        for p in range(0, len(order), pool):
            batch: list[int] = []
            total, widest = 0.0, 0
            for i in sorted(order[p : p + pool], key=key):
                d = self.durations[i]
                width = max(widest, self.positions[i]) if max_positions else 0
                if batch and (
                    total + d > self.seconds
                    or len(batch) >= self.max_items
                    or (max_positions and (len(batch) + 1) * width > max_positions)
                ):
                    batches.append(batch)
                    batch, total, widest = [], 0.0, 0
                    width = self.positions[i] if max_positions else 0
                batch.append(i)
                total += d
                widest = width
            if batch:
                batches.append(batch)
        return batches

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 7919 + self.epoch)
        order = list(range(len(self.durations)))
        if self.shuffle:
            rng.shuffle(order)
        lengths = self.positions if self.positions is not None else self.durations
        batches = self._group(order, lengths.__getitem__, self.max_positions)
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
