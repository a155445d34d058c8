"""`sbasr` with the shared fake tone engine and energy VAD, for tests that must run
the command line in other processes (torchrun's ranks).

`FAKE_SBASR_DIE=RANK:N` makes rank RANK exit abruptly before decoding its Nth recording:
a killed rank, to resume."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]

from fakes import FakeEngine, energy_vad  # noqa: E402

import sbasr.asr.engines.registry  # noqa: E402
import sbasr.asr.pipeline  # noqa: E402
import sbasr.asr.segments  # noqa: E402


class DyingEngine(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        rank, _, after = os.environ.get("FAKE_SBASR_DIE", "-1:0").partition(":")
        self.die = int(after) if rank == os.environ.get("RANK", "0") else None
        self.seen = 0

    def decode(self, audio, spans, options):
        self.seen += 1
        if self.die is not None and self.seen > self.die:
            os._exit(3)
        return super().decode(audio, spans, options)


sbasr.asr.pipeline.vad_spans = energy_vad
sbasr.asr.segments.vad_spans = energy_vad
sbasr.asr.engines.registry.load_engine = lambda *a, **k: DyingEngine()

if __name__ == "__main__":
    from sbasr.cli import main

    sys.argv[0] = "sbasr"
    main()
