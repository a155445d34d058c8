"""The paper's comparison on real speech, one command: end-to-end Whisper (zero-shot, LoRA,
full) against Speech-LLMs (one Whisper encoder; two parallel encoders fused by concat and by
gated bi-directional cross-attention + concat), all trained, decoded and scored by sbasr's
own commands on the same split.

    python benchmarks/compare/run.py --sounds ROOT            # a few hours on a 2-core CPU
    python benchmarks/compare/run.py --sounds ROOT --quick    # minutes

ROOT holds the unpacked Asterisk prompt packages (see benchmarks/asterisk.py): English,
Spanish, French and Russian, split by key into train, dev and held-out test, the same for
every system. `--data DIR` uses a prepared DIR/{train,dev,test}.jsonl instead. Writes
results.md (the table), results.json and results.png into --out (default: beside this file).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LANGUAGES = ("en", "es", "fr", "ru")


@dataclass
class Sizes:
    """How much data and training: the full run, or --quick."""

    train: int  # prompts per language
    dev: int
    test: int
    whisper_steps: int
    stage1_steps: int
    stage2_steps: int
    eval_steps: int


# Every training prompt (about 370 a language, 1.2 h in all), the same dev and test picks.
FULL = Sizes(
    train=10_000,
    dev=10,
    test=30,
    whisper_steps=400,
    stage1_steps=150,
    stage2_steps=300,
    eval_steps=50,
)
QUICK = Sizes(train=6, dev=2, test=3, whisper_steps=2, stage1_steps=2, stage2_steps=2, eval_steps=2)


@dataclass
class Result:
    system: str
    family: str
    rates: dict[str, float] = field(default_factory=dict)  # language -> error rate
    pooled: float = 0.0
    train_seconds: float = 0.0
    rtf: float = 0.0
    # A Speech-LLM row against its own first pass (the Whisper row whose transcripts it
    # corrects or rescores, or whose encoder it took): test utterances with fewer errors
    # and with more, by per-utterance error counts.
    first_pass: str | None = None
    better: int | None = None
    worse: int | None = None


def prepare(sounds: Path, out: Path, sizes: Sizes) -> dict[str, Path]:
    """Split each language's prompts by key: every 5th held out for test, every 10th of the
    rest for dev, the rest for training; then cut each part to the sizes asked."""
    from asterisk import prompts

    from sbasr.training.data import _probe

    parts: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    for lang in LANGUAGES:
        # silence/N are N seconds of silence, with "N seconds of silence" as their text
        rows = [r for r in prompts(sounds, lang) if not r[0].startswith("silence/")]
        if not rows:
            raise SystemExit(f"{sounds}: no {lang} Asterisk prompts (see benchmarks/asterisk.py)")
        test = [r for i, r in enumerate(rows) if i % 5 == 0]
        rest = [r for i, r in enumerate(rows) if i % 5 != 0]
        dev = [r for i, r in enumerate(rest) if i % 10 == 0]
        train = [r for i, r in enumerate(rest) if i % 10 != 0]
        for name, part, n in (
            ("train", train, sizes.train),
            ("dev", dev, sizes.dev),
            ("test", test, sizes.test),
        ):
            step = max(1, len(part) // n)
            for key, wav, text in part[::step][:n]:
                row = {
                    "id": f"{lang}-{key.replace('/', '_')}",
                    "audio": str(wav),
                    "text": text,
                    "language": lang,
                }
                if name == "test":  # one oracle segment per file: hypotheses keyed by id
                    row.update(start=0.0, end=round(_probe(str(wav)) or 0.0, 3))
                parts[name].append(row)
    return write_parts(parts, out)


def write_parts(parts: dict[str, list[dict]], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in parts.items():
        paths[name] = out / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    counts = {name: len(rows) for name, rows in parts.items()}
    print(
        f"data: {counts['train']} train, {counts['dev']} dev, {counts['test']} test "
        f"utterances over {', '.join(LANGUAGES)}",
        flush=True,
    )
    return paths


def sbasr(*args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "sbasr", *args], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"sbasr {' '.join(args[:3])} ... failed:\n{run.stderr[-3000:]}")
    return run


# Greedy: Whisper keeps its temperature fallback with this alone; the Speech-LLM has none.
BEAM_1 = ("--beam-size", "1")
GREEDY = (*BEAM_1, "--temperature-increment", "0")  # Whisper without the fallback


@dataclass
class System:
    """One row of the comparison: how it is trained (None: zero-shot) and decoded."""

    name: str
    family: str
    finetune: list[str] | None
    # Greedy for both families, each engine's own length limits: a cap of 80 tokens (as
    # this run once had) cut the 40 s Russian prompt (491 SmolLM2 tokens) for both.
    # Whisper without its temperature fallback, whose sampling changed a few words from
    # run to run (24.84% and 24.53% zero-shot): the same greedy first pass the
    # hypothesis-conditioned Speech-LLM corrects. One zero-shot row keeps the fallback,
    # Whisper's default decoding.
    decode: list[str] | None = None  # default: GREEDY for Whisper, BEAM_1 for Speech-LLMs
    # The row whose trained Whisper this one builds on (its --model), trained first if
    # --work does not hold it yet; and the row of its first pass (default: that one).
    builds_on: str | None = None
    first_pass: str | None = None

    def __post_init__(self) -> None:
        if self.decode is None:
            self.decode = list(GREEDY if self.family == "end-to-end" else BEAM_1)
        if self.first_pass is None:
            self.first_pass = self.builds_on


def systems(args, sizes: Sizes) -> list[System]:
    w = args.whisper
    common = [
        "--learning-rate",
        "5e-4",
        "--warmup-steps",
        "10",
        "--eval-steps",
        str(sizes.eval_steps),
        "--seed",
        "0",
    ]
    whisper = [
        *common,
        "--arch",
        "whisper",
        "--model",
        w,
        "--max-steps",
        str(sizes.whisper_steps),
        "--batch-size",
        "4",
    ]
    slm = [
        "--arch",
        "speechllm",
        "--model",
        w,
        "--llm",
        args.llm,
        "--precision",
        args.precision,
        "--stages",
        "1,2",
        "--warmup-steps",
        "20",
        "--batch-seconds",
        "30",
        "--eval-steps",
        str(sizes.eval_steps),
        "--seed",
        "0",
    ]
    dual = ["--encoder2", args.encoder2]
    # Every Speech-LLM row trains with the same budget (the steps, rates and batches above
    # and in stage_steps); the recipe adds its checkpoint choice and prompt: the paper's
    # (dev loss, 3 best averaged, plain prompt), or the small-data one (dev WER, patience 3,
    # with or without Whisper's hypothesis in the prompt).
    paper = ["--recipe", "paper"]
    small = ["--recipe", "small-data", "--no-hypothesis"]
    ger = ["--recipe", "small-data", "--hypothesis"]
    full = [*whisper, "--method", "full", "--learning-rate", "1e-5"]
    e2e, slm_family = "end-to-end", "Speech-LLM"
    zero_shot = f"Whisper {w}, zero-shot"
    stacked = []
    # On a fine-tuned first pass, as the paper's authors built theirs: the Speech-LLM's
    # encoder and its hypotheses both from the Whisper row's own trained run in --work.
    for row, label in ((f"Whisper {w}, full fine-tuning", "full"), (f"Whisper {w} + LoRA", "LoRA")):
        on = f"Speech-LLM on Whisper {w} {label} fine-tuned"
        stacked += [
            System(f"{on}, paper recipe", slm_family, [*slm, *paper], builds_on=row),
            System(f"{on}, correction (GER)", slm_family, [*slm, *ger], builds_on=row),
            System(
                f"{on}, N-best rescoring",
                slm_family,
                [*slm, *small, "--rescore", "--nbest", "5"],
                builds_on=row,
            ),
        ]
    rows = [
        System(f"Whisper {w}, zero-shot", e2e, None),
        System(f"Whisper {w}, zero-shot, temperature fallback", e2e, None, list(BEAM_1)),
        System(f"Whisper {w} + LoRA", e2e, [*whisper, "--method", "lora"]),
        System(f"Whisper {w}, full fine-tuning", e2e, full),
        System(
            f"Whisper {w}, full fine-tuning, layer-wise LR decay 0.8",
            e2e,
            [*full, "--layer-lr-decay", "0.8"],
        ),
        System("Speech-LLM, paper recipe", slm_family, [*slm, *paper]),
        System("Speech-LLM, small-data schedule", slm_family, [*slm, *small]),
        System(
            "Speech-LLM, small-data schedule + CTC alignment 0.3",
            slm_family,
            [*slm, *small, "--ctc-weight", "0.3"],
        ),
        System("Speech-LLM + Whisper hypothesis (GER variant)", slm_family, [*slm, *ger]),
        System(
            "Speech-LLM + Whisper hypothesis, chat template",
            slm_family,
            [*slm, *ger, "--chat-template"],
        ),
        System(
            "Speech-LLM + Whisper hypothesis, encoder LoRA",
            slm_family,
            [*slm, *ger, "--train-encoder", "lora"],
        ),
        System(
            "Speech-LLM, two encoders, concat",
            slm_family,
            [*slm, *paper, *dual, "--fusion", "concat"],
        ),
        System(
            "Speech-LLM, two encoders, gated-bi-cross-concat",
            slm_family,
            [*slm, *paper, *dual, "--fusion", "gated-bi-cross-concat"],
        ),
        *stacked,
    ]
    for row in rows:  # the zero-shot rows' Speech-LLMs correct (or start from) zero-shot
        if row.family == slm_family and row.first_pass is None:
            row.first_pass = zero_shot
    return rows


def stage_steps(cmd: list[str], sizes: Sizes) -> list[list[str]]:
    """Speech-LLM runs train stage 1 and stage 2 with their own step counts and rates."""
    if "speechllm" not in cmd:
        return [cmd]
    base = [c for c in cmd if c != "--stages" and c != "1,2"]
    first = [c for c in base if c != "--rescore"]  # the weight is chosen after stage 2
    return [
        [
            *first,
            "--stages",
            "1",
            "--max-steps",
            str(sizes.stage1_steps),
            "--learning-rate",
            "5e-4",
        ],
        [*base, "--stages", "2", "--max-steps", str(sizes.stage2_steps), "--learning-rate", "2e-4"],
    ]


def run_system(
    system: System,
    data: dict[str, Path],
    work: Path,
    sizes: Sizes,
    args,
) -> Result:
    """Train (unless a finished model is there), transcribe and score one system. Each
    finished result is kept in the work directory, so an interrupted comparison run again
    with the same --work goes on where it stopped."""
    name, family, cmd = system.name, system.family, system.finetune
    slug = _slug(name)
    done = work / f"result-{slug}.json"
    if done.is_file():
        result = Result(**json.loads(done.read_text()))
        result.first_pass = system.first_pass
        print(f"  {name}: done before, pooled {100 * result.pooled:.2f}%", flush=True)
        return result
    model, engine, seconds = args.whisper, "whisper", 0.0
    if cmd is not None and system.builds_on:
        cmd = on_trained(cmd, system.builds_on, data, work, sizes, args)
    if cmd is not None:
        out = work / slug
        for i, step in enumerate(stage_steps(cmd, sizes), 1):
            finished = out / (
                "ct2/model.bin" if "speechllm" not in step else f"stage{i}/sbasr-speechllm.json"
            )
            if not finished.is_file():
                # a part cut short goes on from its last checkpoint
                started = (out / f"stage{i}" if "speechllm" in step else out).is_dir()
                sbasr(
                    "finetune",
                    "--train",
                    str(data["train"]),
                    "--dev",
                    str(data["dev"]),
                    "-o",
                    str(out),
                    *step,
                    *(["--resume"] if started else []),
                )
        # the Trainer's own run time: model loading and the export are not training
        states = [out / "trainer_state.json", *sorted(out.glob("stage*/trainer_state.json"))]
        for state in states:
            if state.is_file():
                history = json.loads(state.read_text())["log_history"]
                seconds += sum(h.get("train_runtime", 0.0) for h in history)
        model = str(out)
        engine = "speechllm" if "speechllm" in cmd else "whisper"
    hyp_dir = work / f"hyp-{slug}"
    run = sbasr(
        "transcribe",
        str(data["test"]),
        "--engine",
        engine,
        "--model",
        model,
        "-f",
        "keyed",
        "-o",
        str(hyp_dir),
        *system.decode,
    )
    rtf = re.search(r"real-time factor ([0-9.]+)", run.stderr)
    hyp = work / f"hyp-{slug}.txt"
    hyp.write_text("".join(p.read_text() for p in sorted(hyp_dir.glob("*.keyed"))))
    report = json.loads(sbasr("score", str(hyp), str(data["test"]), "--json").stdout)
    result = Result(name, family, train_seconds=seconds, rtf=float(rtf.group(1)) if rtf else 0.0)
    result.pooled = report["pooled"]["rate"]
    result.rates = {row["language"]: row["rate"] for row in report["languages"]}
    result.first_pass = system.first_pass
    done.write_text(json.dumps(asdict(result)))
    print(
        f"  {name}: pooled {100 * result.pooled:.2f}% "
        + " ".join(f"{k} {100 * v:.1f}%" for k, v in result.rates.items())
        + f"; trained {seconds / 60:.1f} min, RTF {result.rtf:.3f}",
        flush=True,
    )
    return result


def on_trained(
    cmd: list[str], builds_on: str, data: dict[str, Path], work: Path, sizes: Sizes, args
) -> list[str]:
    """`cmd` with --model the trained run of row `builds_on` in `work` (by its slug, so
    that a run trained before, or by `--only`, is found), training that row first if it
    is not there yet."""
    base = work / _slug(builds_on)
    if not (base / "ct2" / "model.bin").is_file():
        row = next(r for r in systems(args, sizes) if r.name == builds_on)
        print(f"  {builds_on}: trained first, for the rows built on it", flush=True)
        run_system(row, data, work, sizes, args)
    at = cmd.index("--model")
    return [*cmd[: at + 1], str(base), *cmd[at + 2 :]]


def utterance_errors(hyp: Path, test: Path) -> dict[str, int]:
    """Each test utterance's error count (MLC-SLM normalisation, as `sbasr score`)."""
    from sbasr.scoring.api import score

    report = score(str(hyp), str(test))
    return dict(zip(report.ids, report.counts[:, :3].sum(1).tolist()))


def better_and_worse(results: list[Result], work: Path, test: Path) -> None:
    """Fill each Speech-LLM row's count of test utterances with fewer and with more errors
    than its first pass, from both rows' transcripts in `work`."""
    errors: dict[str, dict[str, int]] = {}

    def of(name: str) -> dict[str, int] | None:
        if name not in errors:
            hyp = work / f"hyp-{_slug(name)}.txt"
            errors[name] = utterance_errors(hyp, test) if hyp.is_file() else {}
        return errors[name] or None

    for r in results:
        if not r.first_pass:
            continue
        mine, theirs = of(r.system), of(r.first_pass)
        if mine is None or theirs is None:
            continue
        r.better = sum(1 for k, e in mine.items() if e < theirs.get(k, e))
        r.worse = sum(1 for k, e in mine.items() if e > theirs.get(k, e))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def table(results: list[Result], meta: dict) -> str:
    head = (
        "| system | family | "
        + " | ".join(LANGUAGES)
        + " | pooled CER/WER | better / worse | training | RTF |"
    )
    lines = [head, "|" + "---|" * (len(LANGUAGES) + 6)]
    for r in results:
        rates = " | ".join(
            f"{100 * r.rates[lang]:.2f}%" if lang in r.rates else "-" for lang in LANGUAGES
        )
        train = f"{r.train_seconds / 60:.1f} min" if r.train_seconds else "-"
        moved = f"{r.better} / {r.worse}" if r.better is not None else "-"
        lines.append(
            f"| {r.system} | {r.family} | {rates} | **{100 * r.pooled:.2f}%** | {moved} | "
            f"{train} | {r.rtf:.3f} |"
        )
    notes = (
        f"\n{meta['data']}. Error rates are WER (MLC-SLM normalisation, `sbasr score`), "
        f"pooled over all test utterances. Training on {meta['device']}; RTF is "
        "`sbasr transcribe`'s real-time factor on the test set (greedy decoding, "
        "the model load included). Better / worse: test utterances with fewer / more "
        "errors than the row's first pass (zero-shot Whisper, or the fine-tuned Whisper it "
        "is built on). Run: " + meta["command"] + "\n"
    )
    return "\n".join(lines) + "\n" + notes


def chart(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = [*LANGUAGES, "pooled"]
    x = np.arange(len(groups))
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, r in enumerate(results):
        values = [100 * r.rates.get(g, 0.0) for g in LANGUAGES] + [100 * r.pooled]
        hatch = "" if r.family == "end-to-end" else "//"
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=r.system, hatch=hatch)
    ax.set_xticks(x, groups)
    ax.set_ylabel("WER (%)")
    ax.set_title("Held-out WER on Asterisk prompts: end-to-end Whisper vs Speech-LLM")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sounds", type=Path, default=Path("/"))
    parser.add_argument("--data", type=Path, help="prepared train/dev/test.jsonl instead")
    parser.add_argument("--quick", action="store_true", help="a small version in minutes")
    parser.add_argument("--out", type=Path, default=HERE, help="where the results go")
    parser.add_argument("--work", type=Path, help="models and transcripts (default: temp)")
    parser.add_argument("--whisper", default="base", help="the Whisper model of every system")
    parser.add_argument(
        "--encoder2",
        default="tiny.en",
        help="the second encoder (offline stand-in for mHuBERT-147)",
    )
    parser.add_argument("--llm", default="smollm2")
    parser.add_argument(
        "--precision",
        default="auto",
        help="the Speech-LLMs' training precision (bf16: 2x faster steps on a CPU with "
        "AVX-512 BF16, benchmarks/speechllm_train_bench.py)",
    )
    parser.add_argument(
        "--only",
        action="append",
        help="run only the system of this name, or those whose names contain it (given "
        "several times: each of them); the table still lists every system finished in "
        "--work before, so a long comparison can run in parts",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    work = args.work or Path(tempfile.mkdtemp(prefix="sbasr-compare-"))
    if args.data:
        data = {name: args.data / f"{name}.jsonl" for name in ("train", "dev", "test")}
    elif (work / "data" / "test.jsonl").is_file():  # going on with an earlier run
        data = {name: work / "data" / f"{name}.jsonl" for name in ("train", "dev", "test")}
    else:
        data = prepare(args.sounds, work / "data", sizes)
    import torch

    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"a {torch.get_num_threads()}-thread CPU"
    )
    results = []
    rows = systems(args, sizes)
    # --only NAME: the system of exactly that name, else every one whose name contains it
    names = {row.name for row in rows}

    def picked(name: str) -> bool:
        return any(name == o if o in names else o in name for o in args.only)

    for row in rows:
        if args.only and not picked(row.name):
            done = work / f"result-{_slug(row.name)}.json"  # finished in an earlier part
            if done.is_file():
                results.append(Result(**json.loads(done.read_text())))
                results[-1].first_pass = row.first_pass
            continue
        results.append(run_system(row, data, work, sizes, args))
    better_and_worse(results, work, data["test"])
    counts = {n: sum(1 for _ in data[n].open()) for n in ("train", "dev", "test")}
    meta = {
        "data": f"{counts['train']} train, {counts['dev']} dev and {counts['test']} "
        f"held-out utterances ({', '.join(LANGUAGES)})",
        "device": device,
        "sizes": asdict(sizes),
        "command": "`python benchmarks/compare/run.py" + (" --quick" if args.quick else "") + "`",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(table(results, meta))
    (args.out / "results.json").write_text(
        json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=2) + "\n"
    )
    chart(results, args.out / "results.png")
    print(table(results, meta))
    best = {
        fam: min((r for r in results if r.family == fam), key=lambda r: r.pooled)
        for fam in {r.family for r in results}
    }
    for fam, r in sorted(best.items()):
        print(f"best {fam}: {r.system}, pooled {100 * r.pooled:.2f}%")


if __name__ == "__main__":
    main()
