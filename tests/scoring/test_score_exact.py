"""sbasr's counts equal meeteval-wer's (the MLC-SLM tool) and jiwer's on the same tokens."""

from __future__ import annotations

import json
import shutil
import subprocess

import jiwer
import pytest
from conftest import random_pairs, write_keyed

from sbasr import score


def _report(rows, **kw):
    ref = {k: r for k, _, r, _ in rows}
    hyp = {k: h for k, _, _, h in rows}
    return score(hyp, ref, language_from_key=True, **kw)


@pytest.mark.parametrize("normalize", ["mlcslm", "whisper", "none"])
def test_counts_equal_meeteval_cli(tmp_path, pairs, normalize):
    meeteval = shutil.which("meeteval-wer")
    assert meeteval, "meeteval is part of the test extra"
    report = _report(pairs, normalize=normalize)
    utts = list(report.utterances())
    # meeteval scores the very tokens sbasr scored, one token per word.
    ref = write_keyed(tmp_path / "ref", [(u.id, " ".join(u.reference)) for u in utts])
    hyp = write_keyed(tmp_path / "hyp", [(u.id, " ".join(u.hypothesis or [])) for u in utts])
    per, avg = tmp_path / "per.json", tmp_path / "avg.json"
    args = ["wer", "-r", ref, "-h", hyp, "--per-reco-out", per, "--average-out", avg]
    subprocess.run([meeteval, *map(str, args)], check=True, capture_output=True)
    theirs = json.loads(per.read_text())
    for u in utts:
        t = theirs[u.id]
        assert (u.substitutions, u.deletions, u.insertions, len(u.reference)) == (
            t["substitutions"],
            t["deletions"],
            t["insertions"],
            t["length"],
        ), u.id
    total = json.loads(avg.read_text())
    pooled = report.pooled
    assert (pooled.errors, pooled.ref_tokens) == (total["errors"], total["length"])
    assert (pooled.substitutions, pooled.deletions, pooled.insertions) == (
        total["substitutions"],
        total["deletions"],
        total["insertions"],
    )


def test_totals_equal_jiwer(pairs):
    """jiwer breaks S/D/I ties its own way, but the error totals must agree everywhere."""
    report = _report(pairs)
    checked = 0
    for u in report.utterances():
        if not u.reference:
            continue  # jiwer refuses an empty reference
        out = jiwer.process_words(" ".join(u.reference), " ".join(u.hypothesis or []))
        assert out.substitutions + out.deletions + out.insertions == u.errors, u.id
        assert out.references[0] == u.reference, u.id
        checked += 1
    assert checked > 2000


def test_parallel_equals_sequential():
    rows = random_pairs(50_000, seed=3)
    one, two = _report(rows, jobs=1), _report(rows, jobs=2)
    assert one.pooled == two.pooled
    assert one.languages == two.languages
    assert (one.counts == two.counts).all()
