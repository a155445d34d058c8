"""Frozen encoders' outputs, computed once per training utterance and reused every epoch.

With the encoders frozen (the default in both stages) an utterance's encoder output never
changes, yet on a CPU the Whisper encoder is most of a training step. So each utterance is
encoded once (once per speed-perturbation factor) and the fusion, projector and LLM train
on the stored frames.

An entry's key is the audio's content (a hash of the 16 kHz samples before perturbation),
the speed factor and the encoders' identity (their sources and a fingerprint of their
weights): a changed file, factor or encoder makes a new key, so nothing stale is ever
served and what changed is simply encoded again. Entries stay in memory up to a budget
and are also written to disk, one safetensors file each, so that stage 2, a resumed run
or the next experiment on the same data reuses them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

MEMORY_BUDGET = 2 << 30  # bytes of frames kept in memory; the rest is read from disk


def audio_key(samples: np.ndarray, speed: float) -> str:
    """The content part of a key: what the encoder would be fed, before perturbation."""
    digest = hashlib.blake2b(
        np.ascontiguousarray(samples, dtype=np.float32).tobytes(), digest_size=16
    )
    return f"{digest.hexdigest()}-{speed:.4f}"


def weights_fingerprint(modules: list[torch.nn.Module], sources: list[str]) -> str:
    """A short hash of the encoders' sources, shapes and weights: two runs share cached
    frames exactly when their encoders would compute the same ones."""
    digest = hashlib.blake2b(digest_size=12)
    for source in sources:
        digest.update(source.encode())
    for module in modules:
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def default_directory() -> Path:
    """Beside sbasr's prepared models: $SBASR_CACHE, else the user cache directory."""
    from ..whisper.models import cache_dir

    return cache_dir() / "encoder-frames"


class EncoderCache:
    """Per-utterance encoder frames: one (frames, dim) tensor per encoder."""

    def __init__(
        self, identity: str, directory: Path | None = None, memory_budget: int = MEMORY_BUDGET
    ) -> None:
        self.identity = identity
        self.directory = (directory or default_directory()) / identity
        self.memory_budget = memory_budget
        self._memory: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> list[torch.Tensor] | None:
        frames = self._memory.get(key)
        if frames is not None:
            self._memory.move_to_end(key)
            self.hits += 1
            return frames
        path = self._path(key)
        if path.is_file():
            from safetensors.torch import load_file

            try:
                stored = load_file(str(path))
            except Exception:  # a torn or foreign file: encode again
                self.misses += 1
                return None
            frames = [stored[str(i)] for i in range(len(stored))]
            self._remember(key, frames)
            self.hits += 1
            return frames
        self.misses += 1
        return None

    def put(self, key: str, frames: list[torch.Tensor]) -> None:
        # A copy: an utterance's frames are a view into its batch's output, which would
        # otherwise stay in memory whole, outside the budget's count.
        frames = [f.detach().to("cpu", copy=True).contiguous() for f in frames]
        self._remember(key, frames)
        self._write(key, frames)

    def __contains__(self, key: str) -> bool:
        return key in self._memory or self._path(key).is_file()

    def _remember(self, key: str, frames: list[torch.Tensor]) -> None:
        size = sum(f.numel() * f.element_size() for f in frames)
        if size > self.memory_budget:
            return
        self._memory[key] = frames
        self._bytes += size
        while self._bytes > self.memory_budget:
            _, old = self._memory.popitem(last=False)
            self._bytes -= sum(f.numel() * f.element_size() for f in old)

    def _write(self, key: str, frames: list[torch.Tensor]) -> None:
        """Atomically, so that a run killed mid-write leaves no half file behind."""
        from safetensors.torch import save_file

        path = self._path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            save_file({str(i): f for i, f in enumerate(frames)}, tmp)
            os.replace(tmp, path)
        except OSError:  # a read-only or full cache directory only costs speed
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
