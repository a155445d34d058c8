"""Segment ids of plain recordings: named by the span, so that every engine's hypotheses
join by key, and with no speaker where the recording has none."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from conftest import SR
from fakes import FakeEngine, fake_vad, silence, tone  # noqa: F401 - fake_vad is a fixture

import sbasr
from sbasr.asr.engines.base import Decoded


class TimedEngine(FakeEngine):
    """Times its text as Whisper does, inside the span; `pieces` cuts each span in that
    many timed pieces."""

    def __init__(self, pieces: int = 1) -> None:
        super().__init__()
        self.pieces = pieces

    def decode(self, audio, spans, options):
        for d in super().decode(audio, spans, options):
            step = (d.end - d.start - 0.3) / self.pieces
            for k in range(self.pieces):
                start = d.start + 0.1 + k * step
                yield Decoded(d.span, start, start + step, f"{d.text}.{k}", language=d.language)


def _recording(path, channels: int) -> None:
    track = np.concatenate([silence(0.5), tone(440, 1.0), silence(1.5), tone(660, 2.0), silence(1)])
    sf.write(path, np.stack([track] * channels, axis=1) if channels > 1 else track, SR)


def test_engines_name_a_span_alike_and_invent_no_speaker(tmp_path, fake_vad):  # noqa: F811
    _recording(tmp_path / "call.wav", 1)
    spanwise = list(sbasr.transcribe(tmp_path / "call.wav", engine=FakeEngine()))
    timed = list(sbasr.transcribe(tmp_path / "call.wav", engine=TimedEngine()))
    assert [s.id for s in spanwise] == ["call-000050-000150", "call-000300-000500"]
    assert [s.id for s in timed] == [s.id for s in spanwise]
    assert all(s.speaker is None for s in timed)
    assert (timed[0].start, timed[0].end) == (0.6, 1.3)  # the segment keeps its own times
    # a span the engine cuts in two: each piece by its own times, so ids stay distinct
    cut = list(sbasr.transcribe(tmp_path / "call.wav", engine=TimedEngine(pieces=2)))
    assert [s.id for s in cut][:2] == ["call-000060-000095", "call-000095-000130"]
    assert len({s.id for s in cut}) == 4


def test_split_channels_name_their_speaker(tmp_path, fake_vad):  # noqa: F811
    _recording(tmp_path / "call.wav", 2)
    options = sbasr.TranscribeOptions(channels="split")
    ids = [
        s.id for s in sbasr.transcribe(tmp_path / "call.wav", engine=TimedEngine(), options=options)
    ]
    assert ids == [
        "call-A-000050-000150",
        "call-B-000050-000150",
        "call-A-000300-000500",
        "call-B-000300-000500",
    ]
