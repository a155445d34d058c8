"""Batching across recordings, measured on a test set of one-utterance files.

1. For each engine, the same manifest transcribed with --batch-size 1 and 8 in one run:
   wall time ratio, the WER of each and how many texts are identical; the Speech-LLM in
   float32 and, with --speechllm-compute-types float32,bfloat16, in bfloat16 too.
2. Peak resident memory of `sbasr transcribe` over a manifest of 1,000 files (the real
   prompts again under other names, in a temporary directory).

    python benchmarks/transcribe_batch_bench.py --data WORK/data/test.jsonl \
        --speechllm WORK/speech-llm-whisper-hypothesis-ger-variant

WORK is a `benchmarks/compare/run.py --work` directory: its test set and a trained model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wer(hyp: dict[str, str], rows: list[dict]) -> float:
    """Pooled WER over the languages of `rows` (each scored with its own normaliser)."""
    import sbasr

    errors = words = 0.0
    for lang in sorted({r["language"] for r in rows}):
        ref = {r["id"]: r["text"] for r in rows if r["language"] == lang}
        report = sbasr.score({k: hyp.get(k, "") for k in ref}, ref, language=lang)
        errors += report.pooled.rate * report.pooled.ref_tokens
        words += report.pooled.ref_tokens
    return 100 * errors / words


def run(engine, manifest: Path, batch: int, **decode) -> tuple[float, dict[str, str]]:
    import sbasr
    from sbasr.asr.options import DecodeOptions, TranscribeOptions

    opts = TranscribeOptions(decode=DecodeOptions(batch_size=batch, **decode))
    start = time.perf_counter()
    hyp = {s.id: s.text for s in sbasr.transcribe(manifest, engine=engine, options=opts)}
    return time.perf_counter() - start, hyp


def compare(name: str, engine, manifest: Path, rows: list[dict], **decode) -> None:
    # warm-up on the first file: lazy loads (the first-pass Whisper of a hypothesis-
    # conditioned model) and first-call costs are not the batch size's
    first = manifest.with_name("first.jsonl")
    first.write_text(manifest.read_text().splitlines(keepends=True)[0])
    run(engine, first, 1, **decode)
    t1, h1 = run(engine, manifest, 1, **decode)
    t8, h8 = run(engine, manifest, 8, **decode)
    same = sum(h1.get(r["id"]) == h8.get(r["id"]) for r in rows)
    print(
        f"{name:10s} batch 1 {t1:7.1f} s  WER {wer(h1, rows):5.1f}%   batch 8 {t8:7.1f} s  "
        f"WER {wer(h8, rows):5.1f}%   speed-up {t1 / t8:.2f}x   identical texts {same}/{len(rows)}",
        flush=True,
    )


def peak_memory(rows: list[dict], files: int, model: str, work: Path) -> float:
    """VmHWM (MB) of the CLI over `files` one-utterance files, batch 8."""
    audio = work / "audio"
    audio.mkdir()
    manifest = work / "many.jsonl"
    with manifest.open("w") as f:
        for i in range(files):
            row = rows[i % len(rows)]
            link = audio / f"p{i:05d}{Path(row['audio']).suffix}"
            link.symlink_to(row["audio"])
            f.write(json.dumps({"id": f"p{i:05d}", "audio": str(link), **_lang(row)}) + "\n")
    probe = (
        "import sys\nfrom sbasr.cli import main\nsys.argv = ['sbasr'] + sys.argv[1:]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(hwm.split()[1], file=sys.stderr)\n"
    )
    cmd = [sys.executable, "-c", probe, "transcribe", str(manifest), "-m", model]
    cmd += ["--batch-size", "8", "-f", "keyed", "-o", str(work / "out"), "--device", "cpu"]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    lines = out.stderr.strip().splitlines()
    print(f"  {next((x for x in lines if 'transcribed' in x), '')}")
    print(f"  ({time.perf_counter() - start:.0f} s)")
    return int(lines[-1]) / 1024


def _lang(row: dict) -> dict:
    return {"language": row["language"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a test manifest (.jsonl)")
    parser.add_argument("--whisper", default="base", help="Whisper model")
    parser.add_argument("--speechllm", help="a trained Speech-LLM directory")
    parser.add_argument("--files", type=int, default=1000, help="files for the memory run")
    parser.add_argument("--memory-model", default="base")
    parser.add_argument("--parts", default="whisper,speechllm,memory")
    parser.add_argument("--limit", type=int, help="every k-th row, this many (a quicker run)")
    parser.add_argument(
        "--speechllm-compute-types",
        default="float32",
        help="the Speech-LLM engine's weights, each measured in turn (float32,bfloat16)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    from sbasr.asr.engines.registry import load_engine
    from sbasr.asr.options import EngineSettings

    rows = [json.loads(x) for x in args.data.read_text().splitlines() if x.strip()]
    if args.limit and args.limit < len(rows):
        rows = rows[:: len(rows) // args.limit][: args.limit]
    work = Path(tempfile.mkdtemp(prefix="sbasr-batch-bench-"))
    # each prompt a whole file of its own (no times): VAD, then one segment per row
    manifest = work / "test.jsonl"
    manifest.write_text(
        "".join(
            json.dumps({"id": r["id"], "audio": r["audio"], "language": r["language"]}) + "\n"
            for r in rows
        )
    )
    print(f"{len(rows)} one-utterance files; CPU, int8 Whisper; default beams", flush=True)
    settings = EngineSettings(device="cpu")
    if "whisper" in parts:
        compare(
            f"whisper {args.whisper}",
            load_engine("whisper", args.whisper, settings),
            manifest,
            rows,
        )
    if "speechllm" in parts and args.speechllm:
        for compute_type in args.speechllm_compute_types.split(","):
            engine = load_engine(
                "speechllm", args.speechllm, EngineSettings(device="cpu", compute_type=compute_type)
            )
            compare(f"speechllm {compute_type}", engine, manifest, rows)
            del engine
    if "memory" in parts:
        mb = peak_memory(rows, args.files, args.memory_model, work)
        print(f"peak RSS, {args.files} files, {args.memory_model}: {mb:,.0f} MB")


if __name__ == "__main__":
    main()
