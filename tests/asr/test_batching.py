# ruff: noqa: F811 - the fixtures of fakes, imported by name
"""Batching across recordings (`sbasr.asr.corpus`): spans of many files share batches,
each recording's outputs are still its own, in input order, with failures and
--skip-existing as in any run; a Whisper span's text does not depend on its batch-mates.

The plumbing runs on the fake tone engine of fakes (milliseconds); Whisper's
batch independence on tiny.en and espeak-ng speech; the Speech-LLM on tiny random parts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SENTENCES, SR, build, speak, waves
from fakes import FakeEngine, fake_cli, fake_vad, invoke, tone  # noqa: F401

import sbasr
from sbasr.asr.engines.base import Decoded
from sbasr.asr.options import DecodeOptions, TranscribeOptions, WhisperDecodeOptions

PITCHES = [220, 330, 440, 550, 250, 350, 450, 520, 280]


class BatchingEngine(FakeEngine):
    """The tone engine with `decode_clips`: it notes the clips of each batch."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.batches: list[list[int]] = []
        self.fail_at = fail_at

    def decode_clips(self, clips: list[np.ndarray], options: DecodeOptions) -> list[list[Decoded]]:
        from fakes import pitch

        pitches = [pitch(c) for c in clips]
        self.batches.append(pitches)
        if self.fail_at in pitches:
            raise RuntimeError(f"cannot decode {self.fail_at} Hz")
        return [
            [Decoded(i, 0.0, len(c) / SR, f"{options.language}-{p}", language=options.language)]
            for i, (c, p) in enumerate(zip(clips, pitches))
        ]


def _manifest(tmp_path: Path, pitches=PITCHES, oracle: bool = False) -> Path:
    """One short tone file per row, rows without times (one utterance each)."""
    rows = []
    for i, f in enumerate(pitches):
        path = tmp_path / f"t{i}.wav"
        sf.write(path, np.concatenate([np.zeros(SR // 5, np.float32), tone(f, 0.6 + 0.1 * i)]), SR)
        row = {"id": f"u{i}", "audio": str(path), "language": "en"}
        if oracle:
            row.update(start=0.0, end=0.8 + 0.1 * i)
        rows.append(row)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


@pytest.mark.parametrize("oracle", [False, True])
def test_spans_of_many_recordings_share_batches(tmp_path, fake_vad, oracle):
    manifest = _manifest(tmp_path, oracle=oracle)
    one = list(sbasr.transcribe(manifest, engine=FakeEngine()))
    engine = BatchingEngine()
    opts = TranscribeOptions(decode=DecodeOptions(batch_size=4))
    many = list(sbasr.transcribe(manifest, engine=engine, options=opts))
    # 9 one-span recordings in batches of at most 4: three calls, not nine
    assert len(engine.batches) == 3 and max(len(b) for b in engine.batches) == 4
    assert sorted(p for b in engine.batches for p in b) == sorted(PITCHES)
    # same segments, recording after recording in input order
    assert [(s.id, s.text, s.start, s.end) for s in many] == [
        (s.id, s.text, s.start, s.end) for s in one
    ]
    assert [s.id for s in many] == [f"u{i}" for i in range(len(PITCHES))]


def test_a_long_recording_keeps_times_and_order_across_batches(tmp_path, fake_vad):
    bursts = [
        silence for f in PITCHES[:5] for silence in (np.zeros(SR // 2, np.float32), tone(f, 0.8))
    ]
    sf.write(tmp_path / "call.wav", np.concatenate(bursts), SR)
    sf.write(tmp_path / "short.wav", tone(600, 1.0), SR)
    inputs = [tmp_path / "call.wav", tmp_path / "short.wav"]
    one = list(sbasr.transcribe(inputs, engine=FakeEngine()))
    opts = TranscribeOptions(decode=DecodeOptions(batch_size=3, language="en"))
    engine = BatchingEngine()
    many = list(sbasr.transcribe(inputs, engine=engine, options=opts))
    assert len(engine.batches) == 2  # 6 spans of two recordings
    assert [(s.recording, s.start, s.end, s.text[3:]) for s in many] == [
        (s.recording, s.start, s.end, s.text[3:]) for s in one
    ]


def test_look_ahead_is_bounded(tmp_path, fake_vad, monkeypatch):
    """Audio is decoded ahead only so far: 40 files, a window of 4 spans."""
    import sbasr.asr.corpus as corpus
    from sbasr.asr.inputs import expand_inputs

    monkeypatch.setattr(corpus, "_AHEAD_BYTES", 1)
    loads = []
    real = corpus.load_audio
    monkeypatch.setattr(corpus, "load_audio", lambda *a, **k: loads.append(1) or real(*a, **k))
    manifest = _manifest(tmp_path, [220 + 10 * i for i in range(40)])
    recordings, _ = expand_inputs([manifest])
    opts = TranscribeOptions(decode=DecodeOptions(batch_size=2, language="en"))
    outcomes = corpus.transcribe_many(recordings, BatchingEngine(), opts, window=4)
    first = next(outcomes)
    assert first.index == 0 and first.error is None
    assert len(loads) <= 8  # the window, a batch left over, one ahead: not all 40
    assert [o.index for o in outcomes] == list(range(1, 40))


def test_cli_batches_with_failures_and_resumes(tmp_path, fake_cli, monkeypatch):
    import sbasr.asr.engines.registry

    engine = BatchingEngine(fail_at=440)
    monkeypatch.setattr(sbasr.asr.engines.registry, "load_engine", lambda *a, **k: engine)
    manifest = _manifest(tmp_path)
    (tmp_path / "bad.wav").write_bytes(b"RIFF not audio")
    with manifest.open("a") as f:
        f.write(json.dumps({"id": "bad", "audio": str(tmp_path / "bad.wav")}) + "\n")
    out = tmp_path / "out"
    args = ["transcribe", str(manifest), "-f", "keyed", "-o", str(out), "--batch-size", "4"]
    first = invoke(*args)
    assert first.exit_code == 1
    assert "8 transcribed, 0 skipped, 2 failed" in first.output
    assert "cannot decode 440 Hz" in first.output and "bad.wav: cannot decode audio" in first.output
    assert not (out / "u2.keyed").exists() and not (out / "bad.keyed").exists()
    assert (out / "u3.keyed").read_text() == "u3 en-550\n"
    # the failing span was retried alone: its batch-mates were decoded
    assert [440] in engine.batches
    engine.fail_at = None
    stamp = (out / "u3.keyed").stat().st_mtime_ns
    again = invoke(*args, "--skip-existing")
    assert "1 transcribed, 8 skipped, 1 failed" in again.output
    assert (out / "u2.keyed").read_text() == "u2 en-440\n"
    assert (out / "u3.keyed").stat().st_mtime_ns == stamp


def test_whisper_text_does_not_depend_on_batch_mates():
    from sbasr.asr.engines.whisper import WhisperEngine
    from sbasr.asr.options import EngineSettings

    engine = WhisperEngine("tiny.en", EngineSettings(device="cpu"))
    clips = [speak(s) for s in SENTENCES[:4]]
    for beam in (1, 5):
        opts = WhisperDecodeOptions(language="en", beam_size=beam, batch_size=4, timestamps=False)
        alone = [engine.decode_clips([c], opts)[0] for c in clips]
        together = engine.decode_clips(clips, opts)
        assert [[d.text for d in a] for a in alone] == [[d.text for d in t] for t in together]
        assert all(t and t[0].span == i for i, t in enumerate(together))
        assert all(0 <= d.start < d.end <= len(c) / SR for c, t in zip(clips, together) for d in t)
    # the words too, and the recognition is real
    text = " ".join(d.text for t in together for d in t)
    score = sbasr.score({"u": text}, {"u": " ".join(SENTENCES[:4])}, language="en")
    assert score.pooled.rate < 0.3  # tiny.en on synthetic speech: a sanity bound


def test_speechllm_batches_across_recordings(parts, tmp_path, monkeypatch):
    from sbasr.asr.engines.speechllm import SpeechLLMEngine

    build(parts).save(tmp_path / "sl")
    engine = SpeechLLMEngine(str(tmp_path / "sl"))
    calls = []
    real = engine.model.transcribe
    engine.model.transcribe = lambda audio, *a, **k: (
        calls.append(len(audio)) or real(audio, *a, **k)
    )
    rows = []
    for i, wave in enumerate(waves(1.0, 1.0, 1.0, seed=3)):
        sf.write(tmp_path / f"r{i}.wav", wave, SR)
        rows.append({"id": f"r{i}", "audio": str(tmp_path / f"r{i}.wav"), "language": "en"})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    opts = TranscribeOptions(decode=DecodeOptions(batch_size=4, max_new_tokens=3))
    import sbasr.asr.pipeline
    from sbasr.asr.segments import Span

    # noise has no speech for the VAD: each file is one span
    monkeypatch.setattr(sbasr.asr.pipeline, "vad_spans", lambda audio, **k: [Span(0.0, 1.0)])
    many = {s.id: s.text for s in sbasr.transcribe(manifest, engine=engine, options=opts)}
    assert calls == [3]  # three recordings, one batch
    opts.decode.batch_size = 1
    one = {s.id: s.text for s in sbasr.transcribe(manifest, engine=engine, options=opts)}
    assert calls == [3, 1, 1, 1] and set(many) == {"r0", "r1", "r2"}
    assert many == one  # equal lengths: no padding, the same text
