"""benchmarks/compare/run.py --quick: each kind of system trained, decoded and scored by
sbasr's own commands, and the table, JSON and chart written. Tiny random models and espeak-ng
speech in the four languages stand in for Whisper base, SmolLM2 and the Asterisk prompts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf
from conftest import speak

ROOT = Path(__file__).resolve().parents[2]
SAY = {
    "en": ("en-us", ["thank you for calling", "hold the line", "goodbye"]),
    "es": ("es", ["gracias por llamar", "por favor espere", "adiós"]),
    "fr": ("fr-fr", ["merci de votre appel", "veuillez patienter", "au revoir"]),
    "ru": ("ru", ["спасибо за звонок", "пожалуйста подождите", "до свидания"]),
}


def test_quick_comparison_runs_each_kind_of_system(tmp_path, parts):
    rows = {"train": [], "dev": [], "test": []}
    for lang, (voice, sentences) in SAY.items():
        for i, text in enumerate(sentences):
            wav = tmp_path / f"{lang}{i}.wav"
            audio = speak(text, voice)
            sf.write(wav, audio, 16_000)
            row = {"id": f"{lang}-{i}", "audio": str(wav), "text": text, "language": lang}
            rows["train"].append(row)
            if i == 0:
                rows["dev"].append(row)
            if i == 2:
                rows["test"].append({**row, "start": 0.0, "end": len(audio) / 16_000})
    data = tmp_path / "data"
    data.mkdir()
    for name, part in rows.items():
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    out = tmp_path / "out"
    command = [
        sys.executable,
        str(ROOT / "benchmarks/compare/run.py"),
        "--quick",
        "--data",
        str(data),
        "--whisper",
        parts["whisper"],
        "--encoder2",
        parts["hubert-layer"],
        "--llm",
        parts["llm"],
        "--out",
        str(out),
        "--work",
        str(tmp_path / "work"),
    ]
    # A representative part of the table: the zero-shot and LoRA Whisper rows, a
    # Speech-LLM correcting zero-shot Whisper, and the Speech-LLMs built on the LoRA run
    # (paper recipe, correction, N-best rescoring). The other rows run the same commands
    # with other options, each tested with its trainer.
    w = parts["whisper"]
    lora = f"Whisper {w} + LoRA"
    some = ["zero-shot", lora, "Speech-LLM + Whisper hypothesis (GER variant)"]
    some.append(f"Speech-LLM on Whisper {w} LoRA fine-tuned")
    run = subprocess.run(
        [*command, *(a for name in some for a in ("--only", name))], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-2000:]
    results = json.loads((out / "results.json").read_text())["results"]
    assert [r["family"] for r in results] == ["end-to-end"] * 3 + ["Speech-LLM"] * 4
    stacked = [r for r in results if r["system"].startswith("Speech-LLM on Whisper")]
    assert len(stacked) == 3 and {r["first_pass"] for r in stacked} == {lora}
    for r in results[3:]:  # every Speech-LLM row against its own first pass
        assert r["better"] is not None and r["better"] + r["worse"] <= len(rows["test"])
    for r in results:
        assert set(r["rates"]) == set(SAY) and r["pooled"] >= 0 and r["rtf"] > 0
        assert (r["train_seconds"] > 0) == ("zero-shot" not in r["system"])
    table = (out / "results.md").read_text()
    assert table.count("\n| ") == 7 and "N-best rescoring" in table and "better / worse" in table
    assert "Whisper hypothesis" in table and "paper recipe" in table
    assert "temperature fallback" in table
    assert (out / "results.png").stat().st_size > 10_000
    # a comparison run in parts: one system again, the table still lists all finished ones
    again = subprocess.run([*command, "--only", "zero-shot"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done before") == 2  # both zero-shot rows
    assert json.loads((out / "results.json").read_text())["results"] == results
    # a name that is also part of another's (the fallback row) runs that system alone
    alone = subprocess.run(
        [*command, "--only", f"Whisper {w}, zero-shot"], capture_output=True, text=True
    )
    assert alone.returncode == 0 and alone.stdout.count("done before") == 1, alone.stderr
