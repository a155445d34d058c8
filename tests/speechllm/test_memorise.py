"""The whole Speech-LLM path learns: a tiny randomly initialised model trained through the
CLI (both stages, the encoder cache on) on four utterances writes each of them back
exactly. A model that cannot learn its own training set (a label shift, a padding or mask
error, a prompt that differs between training and decoding, a cache that serves the
wrong frames) fails here, where a loss that merely falls would not."""

from __future__ import annotations

import json

import soundfile as sf
from conftest import run_cli

from sbasr.scoring.transcripts import read_transcripts


def sharp_llm(parts, root):
    """A tiny LLM whose frozen output layer can give one token most of the probability. At
    transformers' default spread (0.02) a 32-wide model's logits span under a nat, so its
    loss cannot fall below ~10.2 however well it has learnt and greedy decoding rests on
    near-ties; 64 wide at 0.3 it reaches ~0.03 on these four."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(parts["llm"])
    config.initializer_range = 0.3
    config.hidden_size, config.intermediate_size = 64, 128
    LlamaForCausalLM(config).save_pretrained(root)
    AutoTokenizer.from_pretrained(parts["llm"]).save_pretrained(root)
    return str(root)


def test_a_tiny_model_memorises_four_utterances_through_the_cli(parts, noise_corpus, tmp_path):
    train = noise_corpus / "train.jsonl"
    llm = sharp_llm(parts, tmp_path / "llm")
    out, frames = tmp_path / "m", tmp_path / "frames"
    run = run_cli(
        "finetune",
        "--arch",
        "speechllm",
        "--train",
        str(train),
        "--dev",
        str(train),
        "-o",
        str(out),
        "-m",
        parts["whisper"],
        "--llm",
        llm,
        "--no-hypothesis",
        "--stages",
        "1,2",
        "--max-steps",
        "40",
        "--eval-steps",
        "20",
        "--learning-rate",
        "1e-2",
        "--warmup-steps",
        "0",
        "--batch-seconds",
        "8",
        "--encoder-cache-dir",
        str(frames),
    )
    assert run.returncode == 0, run.stderr
    assert list(frames.rglob("*.safetensors"))  # trained from cached encoder outputs
    config = json.loads((out / "sbasr-speechllm.json").read_text())
    assert config["stages_done"] == [1, 2]
    assert config["dev_wer"] == 0.0  # the checkpoint kept was scored by decoding
    # each whole clip as an oracle segment: VAD would find no speech in noise
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    for row in rows:
        row["audio"] = str(noise_corpus / row["audio"])
        row["start"], row["end"] = 0.0, sf.info(row["audio"]).duration
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(row) + "\n" for row in rows))
    hyp = tmp_path / "hyp"
    engine = ["--engine", "speechllm", "-m", str(out), "-f", "keyed", "-o", str(hyp)]
    decoded = run_cli("transcribe", str(test), *engine)
    assert decoded.returncode == 0, decoded.stderr
    keyed = [read_transcripts(f) for f in sorted(hyp.glob("*.keyed"))]
    written = {k: t for file in keyed for k, t in zip(file.ids, file.texts)}
    expected = {row["id"]: row["text"] for row in rows}
    assert written == expected
