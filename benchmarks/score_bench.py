"""Speed of `sbasr score` against jiwer and meeteval-wer on the same 100,000 utterances.

Builds keyed reference and hypothesis files (8-30 words per utterance, ~10% word errors:
substitutions, deletions, insertions), then times in one run:
- `sbasr score HYP REF` as a user runs it: a fresh process, files in, table out;
- `jiwer.process_words` in this process on the already-read texts (jiwer's best case:
  no interpreter start, no file reading);
- `meeteval-wer wer` (the MLC-SLM challenge's tool) as a fresh process.
Each is run `--repeat` times and the best time kept; the two CLIs take turns, so that
the machine's load weighs on both alike. It checks that all three count the
same errors, and prints the ratios.

    python benchmarks/score_bench.py [--utterances 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_corpus(n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    # A Zipf-like vocabulary of 20,000 lower-case "words": frequent short ones, rare long ones.
    letters = "abcdefghijklmnopqrstuvwxyz'"
    vocab = ["".join(rng.choices(letters[:-1], k=rng.randint(1, 10))) for _ in range(20000)]
    weights = [1 / (r + 1) for r in range(len(vocab))]
    ids, refs, hyps = [], [], []
    for i in range(n):
        ref = rng.choices(vocab, weights, k=rng.randint(8, 30))
        hyp = list(ref)
        for _ in range(max(1, round(len(ref) * 0.1))):
            op = rng.random()
            pos = rng.randrange(len(hyp) + 1)
            if op < 0.6 and pos < len(hyp):
                hyp[pos] = rng.choice(vocab)
            elif op < 0.8 and pos < len(hyp):
                del hyp[pos]
            else:
                hyp.insert(pos, rng.choice(vocab))
        ids.append(f"English-American-{i // 100:04d}-A-{i:06d}-{i + 1:06d}")
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    return ids, refs, hyps


def best_of(repeat: int, func) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def timed(cmd: list[str]) -> float:
    """Seconds one run of `cmd` takes, as a fresh process."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    ids, refs, hyps = make_corpus(args.utterances)
    work = Path(tempfile.mkdtemp(prefix="sbasr-score-bench-"))
    try:
        # No suffix: meeteval reads suffix-less files as keyed text.
        ref_file, hyp_file = work / "ref", work / "hyp"
        ref_file.write_text("".join(f"{k} {t}\n" for k, t in zip(ids, refs)), encoding="utf-8")
        hyp_file.write_text("".join(f"{k} {t}\n" for k, t in zip(ids, hyps)), encoding="utf-8")
        words = sum(len(r.split()) for r in refs)
        print(f"{args.utterances:,} utterances, {words:,} reference words")

        sbasr_cmd = [sys.executable, "-m", "sbasr", "score", str(hyp_file), str(ref_file)]
        # An installed sbasr has its bytecode compiled, as meeteval's has; a checkout run
        # under PYTHONDONTWRITEBYTECODE would recompile every module on each run.
        import compileall

        import sbasr

        compileall.compile_dir(Path(sbasr.__file__).parent, quiet=1)
        meeteval = shutil.which("meeteval-wer")
        avg = work / "avg.json"
        meeteval_cmd = [
            str(meeteval),
            "wer",
            "-r",
            str(ref_file),
            "-h",
            str(hyp_file),
            "--average-out",
            str(avg),
            "--per-reco-out",
            str(work / "per.json"),
        ]
        # The two CLIs alternate, so that a change in the machine's load hits both alike.
        t_sbasr = t_meeteval = float("inf")
        for _ in range(args.repeat):
            t_sbasr = min(t_sbasr, timed(sbasr_cmd))
            if meeteval:
                t_meeteval = min(t_meeteval, timed(meeteval_cmd))
        if meeteval:
            mt = json.loads(avg.read_text())
        else:
            t_meeteval = None
        out = subprocess.run([*sbasr_cmd, "--json"], check=True, capture_output=True, text=True)
        ours = json.loads(out.stdout)["pooled"]

        import os

        jobs = min(os.cpu_count() or 1, 8)
        t_api, _ = best_of(args.repeat, lambda: sbasr.score(hyp_file, ref_file, jobs=jobs))
        t_summary, _ = best_of(
            args.repeat, lambda: sbasr.score_summary(hyp_file, ref_file, jobs=jobs)
        )
        tiny = work / "tiny"
        tiny.write_text("a b\n", encoding="utf-8")
        t_start, _ = best_of(
            args.repeat,
            lambda: subprocess.run(
                [*sbasr_cmd[:4], str(tiny), str(tiny)], check=True, capture_output=True
            ),
        )

        import jiwer

        t_jiwer, jw = best_of(args.repeat, lambda: jiwer.process_words(refs, hyps))

        jiwer_errors = jw.substitutions + jw.deletions + jw.insertions
        assert ours["errors"] == jiwer_errors, (ours, jiwer_errors)
        print(f"errors: sbasr {ours['errors']:,}  jiwer {jiwer_errors:,}", end="")
        if meeteval:
            assert (ours["errors"], ours["ref_tokens"]) == (mt["errors"], mt["length"])
            assert (ours["substitutions"], ours["deletions"], ours["insertions"]) == (
                mt["substitutions"],
                mt["deletions"],
                mt["insertions"],
            )
            print(f"  meeteval {mt['errors']:,} (S/D/I identical to sbasr)", end="")
        print()
        print(
            f"sbasr score CLI       {t_sbasr:7.2f} s   (of which {t_start:.2f} s is the CLI's "
            "start-up, timed on a one-line file)"
        )
        print(f"sbasr.score() API     {t_api:7.2f} s   (in process, like jiwer below)")
        print(f"sbasr.score_summary() {t_summary:7.2f} s   (in process: the counts the CLI prints)")
        print(
            f"jiwer.process_words   {t_jiwer:7.2f} s   sbasr CLI is "
            f"{t_jiwer / t_sbasr:5.1f}x faster; API vs API {t_jiwer / t_api:5.1f}x"
        )
        if t_meeteval is not None:
            print(
                f"meeteval-wer wer CLI  {t_meeteval:7.2f} s   sbasr CLI is "
                f"{t_meeteval / t_sbasr:5.1f}x faster"
            )
        else:
            print("meeteval-wer not installed: pip install meeteval simplejson")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
