"""Fine-tuning Whisper base on real telephone speech, and training throughput.

`--part acceptance`: the English Asterisk prompts (see asterisk.py), split by key into
train, dev and held-out test (every fifth key held out, every tenth of the rest for dev).
Zero-shot base, then `sbasr finetune --method lora` and `--method full` on the train part,
each transcribed on the held-out part with its export and scored by `sbasr score`.

`--part throughput`: the same model and data, full fine-tuning for a few steps, under
`sbasr finetune` and under the widely copied fine-tune-Whisper recipe (features computed
up front, DataCollatorSpeechSeq2SeqWithPadding, Seq2SeqTrainer); utterances per second and
peak memory of each, measured in separate processes in one run.

    python benchmarks/finetune_bench.py --sounds ROOT [--part acceptance|throughput|all]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asterisk import prompts

HWM = "[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]"


def split(root: Path, work: Path) -> dict[str, Path]:
    rows = prompts(root, "en")
    held = [r for i, r in enumerate(rows) if i % 5 == 0]
    rest = [r for i, r in enumerate(rows) if i % 5 != 0]
    dev = [r for i, r in enumerate(rest) if i % 10 == 0]
    train = [r for i, r in enumerate(rest) if i % 10 != 0]
    out = {}
    for name, part in (("train", train), ("dev", dev), ("test", held)):
        path = work / f"{name}.jsonl"
        lines = [
            json.dumps({"id": k, "audio": str(w), "text": t, "language": "en"}) + "\n"
            for k, w, t in part
        ]
        path.write_text("".join(lines))
        out[name] = path
    print(f"asterisk en: {len(train)} train, {len(dev)} dev, {len(held)} held-out prompts")
    return out


def held_out_wer(model: str, test: Path) -> float:
    import sbasr

    opts = sbasr.TranscribeOptions()
    opts.decode.language = "en"
    hyp: dict[str, str] = {}
    for seg in sbasr.transcribe(test, model=model, options=opts):
        hyp[seg.recording] = f"{hyp.get(seg.recording, '')} {seg.text}".strip()
    refs = {json.loads(line)["id"]: json.loads(line)["text"] for line in test.open()}
    return sbasr.score(hyp, refs, language="en").pooled.rate


def acceptance(data: dict[str, Path], work: Path, args) -> None:
    rows = [("zero-shot base", held_out_wer("base", data["test"]), 0.0, 0)]
    print(f"  zero-shot base: held-out WER {100 * rows[0][1]:.2f}%", flush=True)
    for method, lr in (("lora", args.lora_lr), ("full", args.full_lr)):
        out = work / method
        cmd = [
            sys.executable,
            "-m",
            "sbasr",
            "finetune",
            "--model",
            "base",
            "--method",
            method,
            "--train",
            str(data["train"]),
            "--dev",
            str(data["dev"]),
            "-o",
            str(out),
            "--epochs",
            str(args.epochs),
            "--max-steps",
            str(args.max_steps),
            "--batch-size",
            str(args.batch_size),
            "--learning-rate",
            str(lr),
            "--warmup-steps",
            "10",
            "--eval-steps",
            str(args.eval_steps),
            "--seed",
            "0",
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        state = json.loads((out / "trainer_state.json").read_text())
        wer = held_out_wer(str(out), data["test"])
        rows.append((f"base + {method}", wer, seconds, state["global_step"]))
        print(
            f"  base {method}: held-out WER {100 * wer:.2f}% after {state['global_step']} steps "
            f"in {seconds / 60:.1f} min (best dev WER {100 * state['best_metric']:.2f}%)",
            flush=True,
        )
    print_table(rows)


def print_table(rows: list[tuple[str, float, float, int]]) -> None:
    print("| system | held-out WER | training time | steps |\n|---|---|---|---|")
    for name, wer, seconds, steps in rows:
        print(f"| {name} | {100 * wer:.2f}% | {seconds / 60:.1f} min | {steps} |")


RECIPE = """
import json, sys, time, torch
from transformers import (Seq2SeqTrainer, Seq2SeqTrainingArguments,
                          WhisperForConditionalGeneration, WhisperProcessor)
from sbasr.io.audio import load_range
from sbasr.whisper.models import transformers_dir
train, out, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
base = transformers_dir("base")
processor = WhisperProcessor.from_pretrained(base)
model = WhisperForConditionalGeneration.from_pretrained(base)
processor.tokenizer.set_prefix_tokens(language="en", task="transcribe")
rows = [json.loads(line) for line in open(train)][: steps * batch]
t0 = time.perf_counter()
dataset = [{"input_features": processor.feature_extractor(load_range(r["audio"], None, None),
            sampling_rate=16000).input_features[0],
            "labels": processor.tokenizer(r["text"]).input_ids} for r in rows]
prep = time.perf_counter() - t0

def collator(features):  # DataCollatorSpeechSeq2SeqWithPadding, as in the recipe
    batch = processor.feature_extractor.pad([{"input_features": f["input_features"]}
                                             for f in features], return_tensors="pt")
    labels = processor.tokenizer.pad([{"input_ids": f["labels"]} for f in features],
                                     return_tensors="pt")
    labels = labels["input_ids"].masked_fill(labels.attention_mask.ne(1), -100)
    if (labels[:, 0] == model.config.decoder_start_token_id).all().cpu().item():
        labels = labels[:, 1:]
    batch["labels"] = labels
    return batch

args = Seq2SeqTrainingArguments(output_dir=out, per_device_train_batch_size=batch,
    learning_rate=1e-5, warmup_steps=0, max_steps=steps, report_to=[], save_strategy="no",
    remove_unused_columns=False, logging_steps=1000, seed=0)
trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
t0 = time.perf_counter()
trainer.train()
print(json.dumps({"train": time.perf_counter() - t0, "prep": prep, "hwm": HWM_EXPR}))
"""


def throughput(data: dict[str, Path], work: Path, args) -> None:
    steps, batch = args.steps, args.batch_size
    recipe = subprocess.run(
        [
            sys.executable,
            "-c",
            RECIPE.replace("HWM_EXPR", HWM),
            str(data["train"]),
            str(work / "recipe"),
            str(steps),
            str(batch),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    r = json.loads(recipe.stdout.strip().splitlines()[-1])
    probe = (
        "import sys, time\nfrom sbasr.cli import main\n"
        "sys.argv = ['sbasr'] + sys.argv[1:]\nt0 = time.perf_counter()\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(time.perf_counter() - t0, {HWM})\n"
    )
    ours = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            "finetune",
            "--model",
            "base",
            "--method",
            "full",
            "--train",
            str(data["train"]),
            "-o",
            str(work / "ours"),
            "--max-steps",
            str(steps),
            "--batch-size",
            str(batch),
            "--learning-rate",
            "1e-5",
            "--warmup-steps",
            "0",
            "--no-export",
            "--save-steps",
            str(10 * steps),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    _, hwm = ours.stdout.strip().splitlines()[-1].split()
    state = json.loads((work / "ours" / "trainer_state.json").read_text())
    train_s = next(h["train_runtime"] for h in state["log_history"] if "train_runtime" in h)
    n = steps * batch
    print(f"full fine-tuning of base, {steps} steps x {batch} utterances, 2-core CPU:")
    print(
        f"  recipe (Seq2SeqTrainer, features precomputed in {r['prep']:.1f} s): "
        f"{n / r['train']:.3f} utt/s, peak {int(r['hwm']) / 1024:,.0f} MB"
    )
    print(
        f"  sbasr finetune (features on the fly): {n / train_s:.3f} utt/s, "
        f"peak {int(hwm) / 1024:,.0f} MB; throughput ratio {r['train'] / train_s:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sounds", type=Path, default=Path("/"))
    parser.add_argument("--part", default="all", choices=("all", "acceptance", "throughput"))
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=60, help="-1: the whole --epochs")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--eval-steps", type=int, default=30)
    parser.add_argument("--lora-lr", type=float, default=5e-4)
    parser.add_argument("--full-lr", type=float, default=1e-5)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sbasr-ft-bench-"))
    data = split(args.sounds, work)
    if args.part in ("all", "throughput"):
        throughput(data, work, args)
    if args.part in ("all", "acceptance"):
        acceptance(data, work, args)


if __name__ == "__main__":
    main()
