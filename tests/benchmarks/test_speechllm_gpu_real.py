"""benchmarks/speechllm_gpu_real.py: what travels to the GPU machine comes back whole.

The audio goes as 8 kHz mu-law and is rebuilt at 16 kHz there; the files go as a tar cut
into parts under the carry limit, with the Whisper base encoder in a part of its own."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "speechllm_gpu_real", ROOT / "benchmarks/speechllm_gpu_real.py"
)
gpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu)


def test_mulaw_keeps_speech_levels_within_its_quantisation():
    x = np.linspace(-1, 1, 20001).astype(np.float32)
    back = gpu.mulaw_decode(gpu.mulaw_encode(x))
    # 8-bit mu-law: steps of about 3% of the level, never more than 0.016 absolute
    assert np.all(np.abs(back - x) <= 0.016 + 0.035 * np.abs(x))
    assert back.dtype == np.float32


def test_upsampling_keeps_a_tone_and_doubles_the_rate():
    t8 = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 440 * t8).astype(np.float32)
    up = gpu.upsample2(tone)
    t16 = np.arange(16000) / 16000
    assert len(up) == 16000
    assert np.max(np.abs(up - np.sin(2 * np.pi * 440 * t16))) < 1e-3


def test_parts_join_back_into_the_same_files(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu, "PART_BYTES", 6000)  # a tar of tens of kB in several parts
    full = tmp_path / "pack" / "full"
    (full / "whl").mkdir(parents=True)
    (full / "whisper-base").mkdir()
    rng = np.random.default_rng(0)
    files = {
        "audio.npy": rng.bytes(2500),
        "rows.json": b'[{"id": "a"}]',
        "whl/x.whl": rng.bytes(700),
        "whisper-base/encoder.safetensors": rng.bytes(1800),
    }
    for name, data in files.items():
        (full / name).write_bytes(data)
    gpu._split_parts(full, tmp_path / "pack")
    parts = sorted((tmp_path / "pack").glob("part*"), key=lambda p: int(p.name[4:]))
    assert len(parts) >= 3  # the tar's parts, then the encoder's
    assert all(
        sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) <= 6000 for p in parts[:-1]
    )
    assert [f.name for f in parts[-1].rglob("*") if f.is_file()] == ["encoder.safetensors"]
    there = tmp_path / "there"  # each part copied into one folder, as on the GPU machine
    for part in parts:
        for f in part.rglob("*"):
            if f.is_file():
                target = there / f.relative_to(part)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(f.read_bytes())
    gpu.assemble(there)
    got = {str(f.relative_to(there)): f.read_bytes() for f in there.rglob("*") if f.is_file()}
    assert got == files
