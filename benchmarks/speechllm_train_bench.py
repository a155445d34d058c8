"""Speech-LLM training speed on a CPU: sbasr's stage-2 step against the usual way of
training the same model, in one run, on the same batches of the comparison's data.

    python benchmarks/speechllm_train_bench.py --data WORK/train.jsonl --steps 8

The baseline is how a Speech-LLM is commonly trained: the frozen encoder run every step on
inputs padded to 2 s widths, the LLM's own loss (its output layer over every position),
torch's fused (sdpa) attention and torch's dropout in every LoRA. sbasr's step computes
the frozen encoders' outputs once (cached), at exact widths on a CPU, applies the output
layer (cast to bf16 once) on the transcript only, uses eager attention while training on
a CPU and a cheaper CPU LoRA dropout, and runs the LLM on the batch's rows packed without
their padding. Rows in between add these one group at a time (an ablation). Each variant
runs the same batches (by seconds of audio) through the real dataset, collate function,
forward, backward and optimiser step, in float32 and under bf16 autocast (`--precision
bf16`), each timed on a second pass over its batches. Beside them: the cache's one-time
cost (encoding every utterance once), what the 2 s widths cost the encoder alone on short
clips, and the step at another thread count. Training's own sampler also bounds batches by
LLM positions, so both are timed on its first batches too, and per second of audio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sbasr.speechllm.cache import EncoderCache
from sbasr.speechllm.config import SpeechLLMConfig
from sbasr.speechllm.dropout import CpuDropout, cheapen_lora_dropout, lora_dropouts
from sbasr.speechllm.model import SpeechLLM
from sbasr.training.data import check_examples, read_examples
from sbasr.training.sampler import SecondsBatchSampler
from sbasr.training.speechllm_data import SpeechLLMDataset, collate, fill_cache
from sbasr.training.speechllm_options import SpeechLLMOptions
from sbasr.training.speechllm_trainer import training_attention


def steps(model, dataset, batches, threads: int, bf16: bool = False) -> list[float]:
    """Seconds per training step over `batches` but the first, timed on a second pass:
    the first builds what each shape needs (oneDNN's bf16 kernels are made per shape), so
    that no variant gains from shapes an earlier one left behind. `bf16`: under CPU
    autocast, as the Trainer runs `--precision bf16`."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5)
        times = []
        for batch_ids in [*batches, *batches[1:]]:
            start = time.perf_counter()
            batch = collate([dataset[i] for i in batch_ids])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch)["loss"]
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - start)
        return times[len(batches) :]
    finally:
        torch.set_num_threads(previous)


def torch_dropout(model) -> None:
    """Torch's own dropout in every LoRA, as the baseline has it."""
    for table, name, drop in lora_dropouts(model):
        if isinstance(drop, CpuDropout):
            table[name] = torch.nn.Dropout(drop.p)


def encoder_widths(model, examples, threads: int) -> tuple[float, float]:
    """The Whisper encoder alone on 16 short clips: (2 s widths, exact widths) seconds."""
    from sbasr.training.data import load_example_audio

    short = sorted((e for e in examples if (e.duration or 0) < 1.9), key=lambda e: -e.duration)
    audio = [load_example_audio(e) for e in short[:16]]
    enc = model.encoder
    out = []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for step in (200, 1):
            enc.width_step = step
            with torch.no_grad():
                enc(audio)
                start = time.perf_counter()
                for _ in range(3):
                    enc(audio)
            out.append((time.perf_counter() - start) / 3)
    finally:
        enc.width_step = None
        torch.set_num_threads(previous)
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="training manifest (.jsonl)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--encoder", default="base")
    parser.add_argument("--llm", default="smollm2")
    parser.add_argument("--batch-seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()

    examples, _ = check_examples(read_examples(args.data))
    torch.manual_seed(0)
    model = SpeechLLM.build(SpeechLLMConfig(encoder=args.encoder, llm=args.llm, hypothesis=False))
    model.set_stage(2)
    model.train()
    opts = SpeechLLMOptions(train=str(args.data), output_dir="", batch_seconds=args.batch_seconds)
    durations = [e.duration or 0.0 for e in examples]
    sampler = SecondsBatchSampler(durations, args.batch_seconds, opts.batch_size, seed=0)
    batches = list(sampler)[: args.steps + 1]
    plain = SpeechLLMDataset(examples, model, opts)
    # training's own sampler also bounds batches by LLM positions: its batches differ
    bounded = list(
        SecondsBatchSampler(
            durations, args.batch_seconds, opts.batch_size, seed=0, positions=plain.positions()
        )
    )[: args.steps + 1]
    used = sorted({i for b in batches for i in b})
    seconds = sum(durations[i] for i in used)

    def audio_per_step(chosen: list[list[int]]) -> float:  # the warm-up batch not counted
        return sum(durations[i] for b in chosen[1:] for i in b) / (len(chosen) - 1)

    print(
        f"{len(batches) - 1} stage-2 steps of about {seconds / len(batches):.1f} s of audio "
        f"({len(used)} utterances), {args.encoder} encoder + {args.llm}, "
        f"{args.threads} threads",
        flush=True,
    )

    # the baseline: encoders every step, inputs padded to 2 s widths, the LLM's own loss
    # (its output layer over every position)
    def full_head_loss(embeds, mask, labels):
        return model.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss

    # padded rows, the output layer on the transcript only (the ablation's middle rows)
    def padded_loss(embeds, mask, labels):
        causal = model.llm.get_base_model()
        body = getattr(causal, causal.base_model_prefix)
        hidden = body(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        target = labels[:, 1:]
        keep = target != -100
        logits = causal.get_output_embeddings()(hidden[:, :-1][keep]).float()
        return -logits.log_softmax(-1).gather(1, target[keep][:, None]).squeeze(1).mean()

    probe = collate([plain[i] for i in batches[0]])
    model.eval()  # no dropout: the same loss, whichever attention, output layer, packing
    with torch.no_grad():
        ours = float(model(**probe)["loss"])
        with training_attention(model, "cpu"):
            eager = float(model(**probe)["loss"])
        model._text_loss = padded_loss
        padded = float(model(**probe)["loss"])
        model._text_loss = full_head_loss
        theirs = float(model(**probe)["loss"])
    model.train()
    print(
        f"loss, packed rows, output layer on the transcript only: {ours:.5f}; padded rows: "
        f"{padded:.5f}; output layer on every position: {theirs:.5f}; eager attention: "
        f"{eager:.5f}"
    )
    torch_dropout(model)
    model.encoder.width_step = 200
    baseline = steps(model, plain, batches, args.threads)
    baseline_bounded = steps(model, plain, bounded, args.threads)
    model.encoder.width_step = None
    del model._text_loss

    with tempfile.TemporaryDirectory() as tmp:
        cache = EncoderCache(model.encoder_identity(), Path(tmp))
        cached = SpeechLLMDataset(examples, model, opts, cache=cache)
        start = time.perf_counter()
        fill_cache(model, cached, indices=used, echo=lambda m: None)
        fill = time.perf_counter() - start
        fill_cache(
            model, cached, indices=sorted({i for b in bounded for i in b}), echo=lambda m: None
        )
        model._text_loss = padded_loss
        cache_only = steps(model, cached, batches, args.threads)
        cache_only_bf16 = steps(model, cached, batches, args.threads, bf16=True)
        cheapen_lora_dropout(model)
        with training_attention(model, "cpu"):
            padded_bf16 = steps(model, cached, batches, args.threads, bf16=True)
            del model._text_loss
            sbasr = steps(model, cached, batches, args.threads)
            other = 1 if args.threads != 1 else 2
            sbasr_other = steps(model, cached, batches, other)
            sbasr_bf16 = steps(model, cached, batches, args.threads, bf16=True)
            sbasr_bounded = steps(model, cached, bounded, args.threads, bf16=True)
    padded, exact = encoder_widths(model, examples, args.threads)

    b = statistics.mean(baseline)

    def row(name: str, times: list[float]) -> tuple[str, str, str]:
        return name, f"{statistics.mean(times):.2f} s", f"{b / statistics.mean(times):.2f}x"

    rows = [
        (
            "baseline: encoders every step, 2 s widths, output layer everywhere, sdpa",
            f"{b:.2f} s",
            "1.00x",
        ),
        row("+ frozen encoders cached, exact widths, output layer on the transcript", cache_only),
        row("the same, bf16 autocast", cache_only_bf16),
        row("+ eager attention, cheaper CPU LoRA dropout, bf16 autocast", padded_bf16),
        row("sbasr: + packed rows, output layer cast once (float32)", sbasr),
        (f"sbasr, {other} thread(s)", f"{statistics.mean(sbasr_other):.2f} s", ""),
        row("sbasr, bf16 autocast (--precision bf16)", sbasr_bf16),
        ("one-time: encode these utterances once", f"{fill:.1f} s", ""),
        ("encoder on 16 clips < 1.9 s, 2 s widths", f"{padded:.3f} s", "1.00x"),
        ("encoder on 16 clips < 1.9 s, exact widths", f"{exact:.3f} s", f"{padded / exact:.2f}x"),
    ]
    print("| what | time per step (or run) | speed-up |\n|---|---|---|")
    for name, t, ratio in rows:
        print(f"| {name} | {t} | {ratio} |")
    best = b / statistics.mean(sbasr_bf16)
    print(f"\nstage-2 step: sbasr (bf16) {best:.2f}x faster than the baseline")
    bt, at = statistics.mean(baseline_bounded), statistics.mean(sbasr_bounded)
    print(
        f"on training's own batches ({audio_per_step(bounded):.1f} s of audio a step): "
        f"baseline {bt:.2f} s, sbasr (bf16) {at:.2f} s: {bt / at:.2f}x"
    )
    base_rate = b / audio_per_step(batches)  # each on its own sampler's batches
    sbasr_rate = at / audio_per_step(bounded)
    print(
        f"per second of audio, each on its own sampler's batches: baseline "
        f"{base_rate:.3f} s, sbasr (bf16) {sbasr_rate:.3f} s: {base_rate / sbasr_rate:.2f}x"
    )


if __name__ == "__main__":
    main()
