"""The Speech-LLM on a GPU: correctness checks in bfloat16, and speed with a trained model.

    python benchmarks/speechllm_gpu.py checks OUT [--device cuda] [--steps 30]
    python benchmarks/speechllm_gpu.py speed OUT --model DIR --data TEST.jsonl [--device cuda]

`checks` needs no model files: small randomly initialised parts (a Whisper encoder with
tiny.en's tokenizer, a layer-norm HuBERT, a Llama) on `--device`, in bfloat16 on CUDA.
  1. Two encoders, fused by concat and by gated-bi-cross-concat: each utterance of a batch
     against the same utterance alone (largest difference of the speech embeddings, and
     how many greedy transcripts are identical).
  2. `sbasr finetune --arch speechllm` (both stages, the Trainer, checkpoint averaging) on
     the device, on noise clips written as WAV files: its time and training losses. The
     trained model is left in OUT/run, the clips' manifest in OUT/data.jsonl.

`speed` times a trained Speech-LLM (DIR, e.g. the comparison's paper-recipe model from
benchmarks/compare/run.py --work) on a manifest's utterances (e.g. that run's
data/test.jsonl), in one run:
  1. the engine as a user runs it (`sbasr.transcribe`, greedy), batches of 8 against one
     utterance at a time, with how many texts are identical;
  2. stage-2 training steps (projector and LLM LoRA) of a fresh model of the same make
     (`--encoder`, `--llm`) on 8 of the utterances, under bf16 autocast on CUDA.

Results go to OUT/checks.json or OUT/speed.json and are printed. The comparison's
Speech-LLM rows themselves train on a GPU with `benchmarks/compare/run.py --precision bf16
--only Speech-LLM` (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

SAMPLE_RATE = 16_000


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(device: str, fn):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def _noise(seconds: list[float], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(SAMPLE_RATE * s))).astype(np.float32) for s in seconds]


def tiny_parts(root: Path) -> dict[str, str]:
    """Random Whisper, HuBERT and Llama directories under `root`, with tiny.en's tokenizer."""
    from transformers import (
        AutoTokenizer,
        HubertConfig,
        HubertModel,
        LlamaConfig,
        LlamaForCausalLM,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    from sbasr.whisper.models import transformers_dir

    tok = AutoTokenizer.from_pretrained(transformers_dir("tiny.en"))
    torch.manual_seed(0)
    whisper = WhisperConfig(
        d_model=64,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=256,
        decoder_ffn_dim=256,
        vocab_size=len(tok),
        num_mel_bins=80,
    )
    WhisperModel(whisper).save_pretrained(root / "whisper")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(root / "whisper")
    tok.save_pretrained(root / "whisper")
    hubert = HubertConfig(
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    HubertModel(hubert).save_pretrained(root / "hubert")
    llm = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(llm).save_pretrained(root / "llm")
    tok.save_pretrained(root / "llm")
    return {name: str(root / name) for name in ("whisper", "hubert", "llm")}


def checks(out: Path, device: str, steps: int) -> dict:
    import soundfile as sf

    from sbasr.speechllm.model import SpeechLLM, SpeechLLMConfig

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    parts = tiny_parts(out / "parts")
    audio = _noise(list(np.random.default_rng(0).uniform(1.0, 8.0, 24)))
    languages = ["en", "fr", "de", "es"]
    results: dict = {"device": _device_name(device), "dtype": str(dtype).removeprefix("torch.")}
    for fusion in ("concat", "gated-bi-cross-concat"):
        config = SpeechLLMConfig(
            encoder=parts["whisper"],
            encoder2=parts["hubert"],
            fusion=fusion,
            llm=parts["llm"],
            fusion_heads=2,
            hypothesis=False,
        )
        torch.manual_seed(1)
        model = SpeechLLM.build(config)
        model.set_stage(2)
        model = model.to(device, dtype).eval()
        with torch.no_grad():
            batch, lengths = model.encode(audio[:4])
            diffs = []
            for i in range(4):
                alone, n = model.encode([audio[i]])
                diff = (alone[0, : n[0]].float() - batch[i, : lengths[i]].float()).abs().max()
                diffs.append(diff.item())
        together = model.transcribe(audio[:4], languages, 8)
        apart = [model.transcribe([a], [lang], 8)[0] for a, lang in zip(audio[:4], languages)]
        results[f"batch_vs_alone_{fusion}"] = {
            "max_embedding_difference": max(diffs),
            "identical_transcripts": sum(x == y for x, y in zip(together, apart)),
            "of": len(together),
        }
        print(fusion, results[f"batch_vs_alone_{fusion}"], flush=True)

    rows = []
    (out / "audio").mkdir(parents=True, exist_ok=True)
    for i, wave in enumerate(audio):
        path = out / "audio" / f"u{i}.wav"
        sf.write(path, wave, SAMPLE_RATE)
        rows.append({"id": f"u{i}", "audio": str(path), "text": f"number {i}", "language": "en"})
    (out / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:20]))
    (out / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[20:]))
    cmd = [sys.executable, "-m", "sbasr", "finetune", "--arch", "speechllm"]
    cmd += ["--train", str(out / "train.jsonl"), "--dev", str(out / "dev.jsonl")]
    cmd += ["-o", str(out / "run"), "--overwrite", "--model", parts["whisper"]]
    cmd += ["--encoder2", parts["hubert"], "--llm", parts["llm"], "--fusion", "bi-cross"]
    cmd += ["--no-hypothesis", "--select-by", "loss", "--average-best", "2"]
    cmd += ["--max-steps", str(steps), "--eval-steps", str(max(1, steps // 3))]
    cmd += ["--warmup-steps", "2", "--learning-rate", "1e-3", "--batch-seconds", "20"]
    cmd += ["--batch-size", "8", "--logging-steps", "1"]
    cmd += ["--encoder-cache-dir", str(out / "encoder-cache")]
    env_device = {} if device.startswith("cuda") else {"CUDA_VISIBLE_DEVICES": ""}
    seconds, run = _timed(
        device,
        lambda: subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, **env_device}
        ),
    )
    if run.returncode:
        raise SystemExit(f"sbasr finetune failed:\n{run.stderr[-3000:]}")
    state = json.loads((out / "run" / "stage2" / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    results["finetune"] = {
        "seconds": seconds,
        "steps_per_stage": steps,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }
    print("finetune", results["finetune"], flush=True)
    (out / "checks.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def speed(out: Path, model: str, data: Path, device: str, encoder: str, llm: str) -> dict:
    import sbasr
    from sbasr.speechllm.model import SpeechLLM, SpeechLLMConfig
    from sbasr.training.data import load_example_audio, read_examples

    examples = list(read_examples(data))
    seconds = sum(len(load_example_audio(e)) for e in examples) / SAMPLE_RATE
    settings = sbasr.EngineSettings(device=device)

    def texts(batch_size: int) -> list[str]:
        decode = sbasr.SpeechLLMDecodeOptions(beam_size=1, batch_size=batch_size)
        options = sbasr.TranscribeOptions(decode=decode)
        segments = sbasr.transcribe(
            data, engine="speechllm", model=model, options=options, settings=settings
        )
        return [seg.text for seg in segments]

    texts(8)  # warm-up: the model loads and the device builds its kernels
    t_batched, batched = _timed(device, lambda: texts(8))
    t_single, single = _timed(device, lambda: texts(1))
    results: dict = {
        "device": _device_name(device),
        "model": model,
        "utterances": len(examples),
        "audio_seconds": seconds,
        "engine": {
            "batch_8_seconds": t_batched,
            "batch_1_seconds": t_single,
            "speed_up": t_single / t_batched,
            "identical_texts": sum(a == b for a, b in zip(batched, single)),
        },
    }
    print("engine", results["engine"], flush=True)

    torch.manual_seed(0)
    fresh = SpeechLLM.build(SpeechLLMConfig(encoder=encoder, llm=llm, hypothesis=False))
    fresh.set_stage(2)
    fresh = fresh.to(device).train()
    opt = torch.optim.AdamW([p for p in fresh.parameters() if p.requires_grad], lr=1e-4)
    chosen = sorted(examples, key=lambda e: e.duration or 0.0)[-8:]
    batch = [load_example_audio(e) for e in chosen]
    prompts = [fresh.prompt_ids(e.language) for e in chosen]
    targets = [fresh.target_ids(e.text) for e in chosen]
    labels = torch.full((len(batch), max(map(len, targets))), -100)
    for row, target in enumerate(targets):
        labels[row, : len(target)] = torch.tensor(target)
    kind = "cuda" if device.startswith("cuda") else "cpu"

    def step() -> float:
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=kind == "cuda"):
            loss = fresh(prompts, labels, audio=batch)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()

    for _ in range(3):  # warm-up
        step()
    t_train, _ = _timed(device, lambda: [step() for _ in range(10)])
    audio_per_step = sum(len(a) for a in batch) / SAMPLE_RATE
    results["stage2_step"] = {
        "seconds_per_step": t_train / 10,
        "audio_seconds_per_step": audio_per_step,
        "utterances_per_second": 10 * len(batch) / t_train,
    }
    print("stage-2 step", results["stage2_step"], flush=True)
    (out / "speed.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    check = sub.add_parser("checks", help="bf16 batch-vs-alone checks and a short training")
    check.add_argument("out", type=Path)
    check.add_argument("--device", default="cuda")
    check.add_argument("--steps", type=int, default=30, help="training steps a stage")
    fast = sub.add_parser("speed", help="a trained model: engine batching, stage-2 steps")
    fast.add_argument("out", type=Path)
    fast.add_argument("--model", required=True, help="a trained Speech-LLM directory")
    fast.add_argument("--data", type=Path, required=True, help="a manifest (.jsonl)")
    fast.add_argument("--device", default="cuda")
    fast.add_argument("--encoder", default="base", help="the training step's Whisper encoder")
    fast.add_argument("--llm", default="smollm2", help="the training step's LLM")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU is visible; --device cpu runs the same steps on the CPU")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part == "checks":
        checks(args.out, args.device, args.steps)
    else:
        speed(args.out, args.model, args.data, args.device, args.encoder, args.llm)


if __name__ == "__main__":
    main()
