"""The Speech-LLM on real telephone speech: training acceptance and decoding speed.

`--part acceptance`: the English Asterisk prompts, split by key exactly as
finetune_bench.py splits them (396 train, 45 dev, 111 held-out). An untrained model
(embedded Whisper base encoder, conv projector, SmolLM2-135M-Instruct) is scored on the
held-out prompts, then `sbasr finetune --arch speechllm --stages 1` and `--stages 2` train
it and each result is scored the same way, decoded by the model in batches and scored
by `sbasr.score`. With `--model DIR --test FILE` it trains nothing: a model trained
elsewhere (benchmarks/compare) and its untrained twin are scored on FILE.

`--part speed`: on the held-out prompts and a trained model (`--model`, or the one the
acceptance part just trained), in one run:
  - the encoder on each utterance's true length vs Whisper's usual 30 s of padding;
  - batched decoding (8 utterances, KV cache) vs one utterance at a time;
  - overall: the engine as a user runs it (`sbasr.transcribe` over a manifest: LoRA
    merged, true lengths, batches of 8 across files) vs padded and one at a time with the
    adapter as peft loads it, with their transcripts compared.

    python benchmarks/speechllm_bench.py --sounds ROOT [--part acceptance|speed|all]
    python benchmarks/speechllm_bench.py --sounds ROOT --part all --model DIR --test FILE
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from finetune_bench import print_table, split


def held_out_wer(model: str, test: Path, batch: int = 8) -> float:
    """Each held-out prompt is a file of its own, and the pipeline batches the spans of one
    recording, so the prompts are batched here directly through the model, as the
    engine batches spans: by length, 8 at a time, greedy, at most 200 new tokens."""
    import sbasr
    from sbasr.core.text import collapse_repetitions
    from sbasr.io.audio import load_audio
    from sbasr.speechllm.model import SpeechLLM

    rows = [json.loads(line) for line in test.open()]
    rows.sort(key=lambda r: Path(r["audio"]).stat().st_size)
    slm = SpeechLLM.load(model)
    hyp = {}
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        audio = [load_audio(r["audio"]).channels[0] for r in chunk]
        texts = slm.transcribe(audio, [r.get("language", "en") for r in chunk], max_new_tokens=200)
        hyp.update({r["id"]: collapse_repetitions(t) for r, t in zip(chunk, texts)})
    refs = sbasr.Transcripts(
        "refs",
        [r["id"] for r in rows],
        [r["text"] for r in rows],
        [r.get("language", "en") for r in rows],
    )
    return sbasr.score(hyp, refs).pooled.rate


def untrained_like(model: str | None, work: Path) -> Path:
    """A model as `model` is configured (or the defaults), with nothing trained."""
    from sbasr.core.constants import SPEECHLLM_CONFIG
    from sbasr.speechllm.model import SpeechLLM, SpeechLLMConfig

    config = SpeechLLMConfig(encoder="base", llm="smollm2", hypothesis=False)
    if model:
        config = SpeechLLMConfig.from_dict(json.loads((Path(model) / SPEECHLLM_CONFIG).read_text()))
        config.llm_lora, config.stages_done = False, []
    out = work / "untrained"
    SpeechLLM.build(config).save(out)
    return out


def trained_vs_untrained(model: str, test: Path, work: Path) -> None:
    """Held-out error of a model trained elsewhere (benchmarks/compare) against the same
    model untrained, on that run's own held-out test set."""
    before = held_out_wer(str(untrained_like(model, work)), test)
    after = held_out_wer(model, test)
    print(
        f"| model | held-out CER/WER |\n|---|---|\n| untrained | {100 * before:.2f}% |\n"
        f"| {model} | {100 * after:.2f}% |"
    )


def acceptance(data: dict[str, Path], work: Path, args) -> Path:
    untrained = untrained_like(None, work)
    rows = [
        ("untrained (base encoder + SmolLM2)", held_out_wer(str(untrained), data["test"]), 0.0, 0)
    ]
    print(f"  untrained: held-out WER {100 * rows[0][1]:.2f}%", flush=True)
    out = work / "speechllm"
    for stage, lr, steps in (
        (1, args.stage1_lr, args.stage1_steps),
        (2, args.stage2_lr, args.stage2_steps),
    ):
        cmd = [
            sys.executable,
            "-m",
            "sbasr",
            "finetune",
            "--arch",
            "speechllm",
            "--stages",
            str(stage),
            "--train",
            str(data["train"]),
            "--dev",
            str(data["dev"]),
            "-o",
            str(out),
            "--max-steps",
            str(steps),
            "--learning-rate",
            str(lr),
            "--warmup-steps",
            str(args.warmup),
            "--batch-seconds",
            str(args.batch_seconds),
            "--eval-steps",
            str(args.eval_steps),
            "--average-best",
            "3",
            "--logging-steps",
            "10",
            "--seed",
            "0",
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        wer = held_out_wer(str(out), data["test"])
        state = json.loads((out / f"stage{stage}" / "trainer_state.json").read_text())
        rows.append((f"after stage {stage}", wer, seconds, state["global_step"]))
        print(
            f"  stage {stage}: held-out WER {100 * wer:.2f}% after {state['global_step']} "
            f"steps in {seconds / 60:.1f} min (best dev loss {state['best_metric']:.3f})",
            flush=True,
        )
    print_table(rows)
    return out


def padded_whisper(enc):
    """The usual way: every utterance padded to 30 s, Whisper's encoder run on all of it,
    and the frames of the real audio kept."""
    from torch import nn

    class PaddedWhisper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.dim, self.kind = enc, enc.dim, "whisper"

        def forward(self, audio):
            return _padded(self.enc, audio)

    return PaddedWhisper()


def _padded(enc, audio):
    import torch

    fe = enc.feature_extractor
    feats = fe(audio, sampling_rate=16_000, return_tensors="pt").input_features
    out = enc.encoder(feats).last_hidden_state
    lengths = torch.tensor([min(1500, (len(a) // 160 + 1) // 2) for a in audio])
    return out, lengths


def speed(model_dir: str, test: Path, args) -> None:
    """The engine as a user runs it (`sbasr.transcribe` over a manifest of one-utterance
    files: LoRA merged, true-length encoder, batches of 8 across recordings) against the
    usual way (the adapter as peft loads it, every utterance padded to 30 s and decoded
    alone), with the steps between them timed apart on the same audio."""
    import numpy as np
    import torch

    import sbasr
    from sbasr.asr.engines.registry import load_engine
    from sbasr.asr.options import DecodeOptions, EngineSettings, TranscribeOptions
    from sbasr.io.audio import load_audio
    from sbasr.speechllm.model import SpeechLLM

    torch.manual_seed(0)
    model = SpeechLLM.load(model_dir).eval()  # as peft loads it: the adapter beside
    rows = [json.loads(line) for line in test.open()][: args.utterances]
    audio = [load_audio(r["audio"]).channels[0] for r in rows]
    order = np.argsort([len(a) for a in audio])  # batches of similar length, as the engine
    sorted_audio = [audio[i] for i in order]
    batch, n = 8, args.max_new_tokens
    print(
        f"{len(audio)} held-out prompts, {sum(map(len, audio)) / 16000:.0f} s of audio, "
        f"{torch.get_num_threads()} threads, at most {n} new tokens"
    )

    def timed(fn):
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result

    with torch.inference_mode():
        model.transcribe(sorted_audio[:batch], ["en"] * batch, n)  # warm-up, not timed
        true_enc = model.encoder
        padded_enc = padded_whisper(true_enc)
        chunks = [sorted_audio[i : i + batch] for i in range(0, len(audio), batch)]
        t_true, _ = timed(lambda: [true_enc(c) for c in chunks])
        t_pad, _ = timed(lambda: [padded_enc(c) for c in chunks])
        t_batched, batched = timed(
            lambda: [t for c in chunks for t in model.transcribe(c, ["en"] * len(c), n)]
        )
        t_single, single = timed(
            lambda: [model.transcribe([a], ["en"], n)[0] for a in sorted_audio]
        )
        model.encoder = padded_enc
        try:
            t_base, base = timed(lambda: [model.transcribe([a], ["en"], n)[0] for a in audio])
        finally:
            model.encoder = true_enc

    engine = load_engine("speechllm", model_dir, EngineSettings(device="cpu"))
    manifest = test.with_name("speed.jsonl")
    manifest.write_text(
        "".join(
            json.dumps(
                {
                    "id": r["id"],
                    "audio": r["audio"],
                    "language": "en",
                    "start": 0.0,
                    "end": len(a) / 16_000,
                }
            )
            + "\n"
            for r, a in zip(rows, audio)
        )
    )
    options = TranscribeOptions(decode=DecodeOptions(batch_size=batch, max_new_tokens=n))
    t_engine, segments = timed(
        lambda: list(sbasr.transcribe(manifest, engine=engine, options=options))
    )
    ours = {s.id: s.text for s in segments}
    same = sum(a == b for a, b in zip(batched, single))
    agree = sbasr.score(
        {r["id"]: ours.get(r["id"], "") for r in rows},
        {r["id"]: t for r, t in zip(rows, base)},
        language="en",
    )
    print("| comparison | baseline | sbasr | ratio |\n|---|---|---|---|")
    print(
        f"| encoder: padded 30 s vs true length, batches of {batch} | {t_pad:.2f} s | "
        f"{t_true:.2f} s | {t_pad / t_true:.1f}x |"
    )
    print(
        f"| decoding: one at a time vs batched {batch} (adapter unmerged; identical "
        f"transcripts {same}/{len(audio)}) | {t_single:.2f} s | {t_batched:.2f} s | "
        f"{t_single / t_batched:.1f}x |"
    )
    print(
        f"| overall: padded and one at a time vs the engine (LoRA merged, true length, "
        f"batched across files, audio read included) | {t_base:.2f} s | {t_engine:.2f} s | "
        f"**{t_base / t_engine:.1f}x** |"
    )
    print(
        f"The engine's transcripts differ from the baseline's by "
        f"{100 * (agree.pooled.rate or 0):.1f}% WER (the model was trained on true lengths)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sounds", type=Path, default=Path("/"))
    parser.add_argument("--part", default="all", choices=("all", "acceptance", "speed"))
    parser.add_argument("--model", help="a trained Speech-LLM for --part speed")
    parser.add_argument(
        "--test",
        type=Path,
        help="with --model and --part acceptance: score it and its untrained "
        "twin on this held-out manifest instead of training",
    )
    parser.add_argument("--stage1-steps", type=int, default=300)
    parser.add_argument("--stage2-steps", type=int, default=200)
    parser.add_argument("--stage1-lr", type=float, default=5e-4)
    parser.add_argument("--stage2-lr", type=float, default=2e-4)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-seconds", type=float, default=30.0)
    parser.add_argument("--eval-steps", type=int, default=50)
    parser.add_argument("--utterances", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=60)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sbasr-sl-bench-"))
    data = split(args.sounds, work)
    model = args.model
    if args.part in ("all", "acceptance"):
        if args.model and args.test:
            trained_vs_untrained(args.model, args.test, work)
        else:
            model = str(acceptance(data, work, args))
    if args.part in ("all", "speed"):
        if not model:
            parser.error("--part speed needs --model (a trained Speech-LLM directory)")
        speed(model, data["test"], args)


if __name__ == "__main__":
    main()
