"""N-best rescoring's cost: `sbasr transcribe` with the Whisper engine alone against the
Speech-LLM engine rescoring the same Whisper model's N-best list, on the same real
telephone prompts, in one run: what rescoring adds to Whisper's own transcription time.

    python benchmarks/rescore_bench.py --sounds ROOT [--whisper RUN] [--slm DIR]

ROOT holds the unpacked Asterisk prompt packages (benchmarks/asterisk.py). --whisper is
the first pass (an embedded name, or a `sbasr finetune --arch whisper` run); --slm a
Speech-LLM built on it. Without --slm an untrained one is built on --whisper and SmolLM2
(its projector's weights do not change what rescoring costs). Each command runs twice,
alternately, and its faster run counts: the wall time of the whole command (model
loading included) and the transcription time sbasr reports.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LANGUAGES = ("en", "es", "fr", "ru")


def manifest(sounds: Path, per_language: int, path: Path) -> int:
    """Oracle-segment rows of real prompts, `per_language` of each language (every 5th
    prompt: the comparison's test picks)."""
    from asterisk import prompts

    from sbasr.training.data import _probe

    rows = []
    for lang in LANGUAGES:
        picks = [r for i, r in enumerate(prompts(sounds, lang)) if i % 5 == 0]
        picks = [r for r in picks if not r[0].startswith("silence/")][:per_language]
        for key, wav, text in picks:
            rows.append(
                {
                    "id": f"{lang}-{key.replace('/', '_')}",
                    "audio": str(wav),
                    "text": text,
                    "language": lang,
                    "start": 0.0,
                    "end": round(_probe(str(wav)) or 0.0, 3),
                }
            )
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


def untrained_slm(whisper: str, llm: str, out: Path) -> Path:
    """A Speech-LLM on `whisper` and `llm`, projector untrained, set to rescore."""
    from sbasr.speechllm.config import SpeechLLMConfig
    from sbasr.speechllm.model import SpeechLLM
    from sbasr.speechllm.sources import bundle
    from sbasr.speechllm.stacking import stacked_config

    config = stacked_config(SpeechLLMConfig(encoder=whisper, llm=llm), echo=lambda m: None)
    model = SpeechLLM.build(config)
    model.spec.rescore_weight = 0.5
    bundle(model.spec, out)
    model.save(out)
    return out


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, sbasr's own transcription seconds) of one `sbasr transcribe`."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "sbasr", *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"sbasr {' '.join(args[:4])} ... failed:\n{run.stderr[-3000:]}")
    took = re.search(r"in ([0-9.]+) s", run.stderr)
    return wall, float(took.group(1)) if took else wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sounds", type=Path, default=Path("/"))
    parser.add_argument("--whisper", default="base", help="the first pass: name or run dir")
    parser.add_argument("--slm", type=Path, help="a Speech-LLM on --whisper (default: untrained)")
    parser.add_argument("--llm", default="smollm2")
    parser.add_argument("--per-language", type=int, default=6)
    parser.add_argument("--nbest", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--no-own", action="store_true", help="leave out the row with the LLM's own transcript"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sbasr-rescore-bench-"))
    test = work / "test.jsonl"
    n = manifest(args.sounds, args.per_language, test)
    slm = args.slm or untrained_slm(args.whisper, args.llm, work / "slm")
    common = ["-f", "keyed", "--threads", str(args.threads)]
    commands = {
        "whisper": ["--engine", "whisper", "--model", args.whisper],
        "rescoring (N-best + LLM)": [
            "--engine",
            "speechllm",
            "--model",
            str(slm),
            "--nbest",
            str(args.nbest),
            "--no-rescore-own",
            *(["--rescore-weight", "0.5"] if args.slm is None else []),
        ],
        "rescoring + the LLM's own transcript": [
            "--engine",
            "speechllm",
            "--model",
            str(slm),
            "--nbest",
            str(args.nbest),
            *(["--rescore-weight", "0.5"] if args.slm is None else []),
        ],
    }
    if args.no_own:
        del commands["rescoring + the LLM's own transcript"]
    best: dict[str, tuple[float, float]] = {}
    for round_ in range(2):
        for name, cmd in commands.items():
            out = work / f"out-{round_}-{len(best)}-{abs(hash(name))}"
            wall, took = timed(["transcribe", str(test), *cmd, *common, "-o", str(out)])
            if name not in best or wall < best[name][0]:
                best[name] = (wall, took)
    print(f"{n} real prompts ({', '.join(LANGUAGES)}), Whisper {args.whisper}, N={args.nbest}")
    base_wall, base_took = best["whisper"]
    for name, (wall, took) in best.items():
        print(
            f"  {name:40s} wall {wall:6.1f} s ({wall / base_wall:.2f}x)   "
            f"transcription {took:6.1f} s ({took / base_took:.2f}x)"
        )
    wall, took = best["rescoring (N-best + LLM)"]
    print(
        f"rescoring / Whisper alone: transcription {took / base_took:.2f}x, "
        f"wall (model loading included) {wall / base_wall:.2f}x"
    )


if __name__ == "__main__":
    main()
