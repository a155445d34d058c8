"""benchmarks/speechllm_gpu.py on the CPU: both of its parts run end to end and measure
what they say (a batch against each utterance alone, a short training, the engine's
batching and a stage-2 step), so that a user's GPU run does not fail on the way."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "speechllm_gpu.py"


def _run(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]


def test_checks_then_speed_on_the_model_checks_trained(tmp_path):
    _run("checks", str(tmp_path), "--device", "cpu", "--steps", "2")
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert checks["device"] == "cpu" and checks["dtype"] == "float32"
    for fusion in ("concat", "gated-bi-cross-concat"):
        row = checks[f"batch_vs_alone_{fusion}"]
        # float32: padding is masked everywhere, so a batch changes nothing but rounding
        assert row["max_embedding_difference"] < 1e-4
        assert row["identical_transcripts"] == row["of"] == 4
    assert all(math.isfinite(checks["finetune"][k]) for k in ("first_loss", "last_loss"))
    assert (tmp_path / "run" / "sbasr-speechllm.json").is_file()

    parts = tmp_path / "parts"
    _run(
        "speed",
        str(tmp_path / "speed"),
        "--model",
        str(tmp_path / "run"),
        "--data",
        str(tmp_path / "dev.jsonl"),
        "--device",
        "cpu",
        "--encoder",
        str(parts / "whisper"),
        "--llm",
        str(parts / "llm"),
    )
    speed = json.loads((tmp_path / "speed" / "speed.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "dev.jsonl").open()]
    assert speed["utterances"] == len(rows) == 4
    engine = speed["engine"]
    assert engine["batch_8_seconds"] > 0 and engine["batch_1_seconds"] > 0
    assert 0 <= engine["identical_texts"] <= len(rows)
    step = speed["stage2_step"]
    assert step["seconds_per_step"] > 0
    # the step trains on the longest 8 utterances of the manifest: here all 4
    assert 4 < step["audio_seconds_per_step"] < 4 * 8.0
