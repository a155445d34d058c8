"""`sbasr.score_summary`: `score`'s counts, with two keyed files in the same order scored
part by part (each process reading its own lines), and anything else as `score` does."""

from __future__ import annotations

import codecs
import json
import random

import pytest
from conftest import random_pairs, run_cli

import sbasr.scoring.api as api
from sbasr import SbasrError, score, score_summary
from sbasr.scoring.file_parts import cut_alike

LANGS = {"en": "English", "de": "German", "ja": "Japanese", "zh": "Chinese"}


@pytest.fixture(autouse=True)
def small_parts(monkeypatch):
    monkeypatch.setattr(api, "_MIN_PER_JOB", 40)  # a few hundred utterances make parts


@pytest.fixture
def rows():
    # ids that name their language, MLC-SLM style, for --language-from-key
    return [
        (f"{LANGS[lang]}-{i:04d}-A", lang, ref, hyp)
        for i, (_, lang, ref, hyp) in enumerate(random_pairs(400, seed=7))
        if lang in LANGS
    ]


def write(path, lines, end="\n", bom=False):
    data = end.join(lines) + end
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data.encode("utf-8"))
    return path


def keyed(rows, side):
    return [f"{uid} {ref if side == 'ref' else hyp}".rstrip() for uid, _, ref, hyp in rows]


def summary_fields(report):
    return report.pooled, report.languages, report.missing, report.extra, report.normalize


def in_parts(monkeypatch) -> list[bool]:
    """Records whether each call was scored in parts (True) or the ordinary way."""
    calls: list[bool] = []
    ordinary = api._score

    def spy(*args):
        calls.append(False)
        return ordinary(*args)

    monkeypatch.setattr(api, "_score", spy)
    return calls


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"language_from_key": True},
        {"language": "ja"},
        {"language_from_key": True, "unit": "char", "normalize": "whisper"},
    ],
)
def test_parts_give_the_counts_score_gives(tmp_path, rows, monkeypatch, options):
    hyp = write(tmp_path / "hyp", keyed(rows, "hyp"))
    ref = write(tmp_path / "ref", keyed(rows, "ref"))
    expected = score(hyp, ref, jobs=1, **options)
    calls = in_parts(monkeypatch)
    for jobs in (2, 3):
        got = score_summary(hyp, ref, jobs=jobs, **options)
        assert summary_fields(got) == summary_fields(expected)
    assert calls == []  # never the ordinary way: both times in parts


def test_the_cut_falls_between_the_same_lines_of_both_files(tmp_path, rows):
    hyp = write(tmp_path / "hyp", keyed(rows, "hyp"), end="\r\n", bom=True)
    ref = write(tmp_path / "ref", keyed(rows, "ref"))
    parts = cut_alike(hyp, ref, 3, 40)
    assert parts is not None and len(parts.cuts) == 3
    firsts = []
    for cut in parts.cuts:
        hyp_text, ref_text = parts.texts(cut)
        hyp_ids = [line.split()[0] for line in hyp_text.splitlines()]
        assert hyp_ids == [line.split()[0] for line in ref_text.splitlines()]
        firsts.append(len(hyp_ids))
    assert sum(firsts) == len(rows) and min(firsts) > len(rows) // 5
    assert parts.cuts[0][0].start == len(codecs.BOM_UTF8)  # the BOM is not text
    # read in blocks, the parts are the same lines of both files, each once
    for cut in parts.cuts:
        blocks = list(parts.blocks(cut, size=64))
        assert len(blocks) > 2
        for hyp_text, ref_text in blocks:
            hyp_ids = [line.split()[0] for line in hyp_text.splitlines()]
            assert hyp_ids == [line.split()[0] for line in ref_text.splitlines()]
        assert "".join(r for _, r in blocks) == parts.texts(cut)[1]


def shuffled(lines):
    lines = list(lines)
    random.Random(1).shuffle(lines)
    return lines


# Each (hypothesis lines, reference lines) from the same rows, not scorable in parts.
ODD = {
    "other order": lambda h, r: (shuffled(h), r),
    "a hypothesis missing": lambda h, r: (h[:150] + h[151:], r),
    "an extra hypothesis": lambda h, r: ([*h, "Extra-0001 hello"], r),
    "blank lines": lambda h, r: ([*h[:100], "", "  ", *h[100:]], r),
    "no trailing newline": lambda h, r: (h, r),  # written without one below
}


@pytest.mark.parametrize("case", ODD)
def test_anything_else_is_scored_the_ordinary_way_alike(tmp_path, rows, case):
    h, r = ODD[case](keyed(rows, "hyp"), keyed(rows, "ref"))
    end = "" if case == "no trailing newline" else "\n"
    hyp = tmp_path / "hyp"
    hyp.write_text("\n".join(h) + end, "utf-8")
    ref = write(tmp_path / "ref", r)
    expected = score(hyp, ref, jobs=1, language_from_key=True)
    got = score_summary(hyp, ref, jobs=2, language_from_key=True)
    assert summary_fields(got) == summary_fields(expected)


def same_error(hyp, ref) -> str:
    """`score`'s error for these files, which `score_summary` must give too."""
    with pytest.raises(SbasrError) as ordinary:
        score(hyp, ref, jobs=1)
    with pytest.raises(SbasrError) as in_parts:
        score_summary(hyp, ref, jobs=2)
    assert str(in_parts.value) == str(ordinary.value)
    return str(ordinary.value)


def test_an_id_repeated_in_another_part_is_the_same_error(tmp_path, rows):
    h, r = keyed(rows, "hyp"), keyed(rows, "ref")
    for lines in (h, r):  # the first id again on the last line, in both
        lines[-1] = lines[0].split(None, 1)[0] + " " + lines[-1].split(None, 1)[-1]
    hyp, ref = write(tmp_path / "hyp", h), write(tmp_path / "ref", r)
    assert f"hyp:{len(h)}: duplicate utterance id" in same_error(hyp, ref)


def test_bad_utf8_in_a_part_is_the_same_error(tmp_path, rows):
    h = keyed(rows, "hyp")
    k = len(h) * 3 // 4  # in the second part
    hyp = tmp_path / "hyp"
    hyp.write_bytes("".join(x + "\n" for x in h[:k]).encode() + b"X \xff\n")
    ref = write(tmp_path / "ref", keyed(rows, "ref")[: k + 1])
    assert f"hyp:{k + 1}: not valid UTF-8" in same_error(hyp, ref)


def test_the_cli_scores_a_large_set_in_parts_alike(tmp_path):
    # past the real threshold (2 x 20,000 utterances) in a fresh process
    big = [(f"u{i:06d}", ref, hyp) for i, (_, _, ref, hyp) in enumerate(random_pairs(40_400))]
    hyp = write(tmp_path / "hyp", [f"{k} {h}".rstrip() for k, _, h in big])
    ref = write(tmp_path / "ref", [f"{k} {r}".rstrip() for k, r, _ in big])
    assert cut_alike(hyp, ref, 2, 20_000) is not None
    out = run_cli("score", str(hyp), str(ref), "--json", "--jobs", "2")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == score(hyp, ref, jobs=1).to_dict()


def test_large_files_are_counted_a_block_at_a_time(tmp_path, monkeypatch):
    import builtins

    import sbasr.scoring.file_parts

    pairs = [(f"u{i:06d}", ref, hyp) for i, (_, _, ref, hyp) in enumerate(random_pairs(20_000))]
    hyp = write(tmp_path / "hyp", [f"{k} {h}".rstrip() for k, _, h in pairs])
    ref = write(tmp_path / "ref", [f"{k} {r}".rstrip() for k, r, _ in pairs])
    expected = summary_fields(score(hyp, ref, jobs=1))
    reads: list[int] = []

    class Recorded:
        def __init__(self, file):
            self.file = file

        def read(self, n=-1):
            data = self.file.read(n)
            reads.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(sbasr.scoring.file_parts, "BLOCK", 1 << 16)
    recorded = lambda *a: Recorded(builtins.open(*a))  # noqa: E731, SIM115
    monkeypatch.setattr(sbasr.scoring.file_parts, "open", recorded, raising=False)
    monkeypatch.setattr(api, "_MIN_STREAMED", 1000)
    monkeypatch.setattr(api, "_score", None)  # never the ordinary way, which reads all
    for jobs in (1, 2):
        reads.clear()
        assert summary_fields(score_summary(hyp, ref, jobs=jobs)) == expected
        assert max(reads) <= 1 << 16 and sum(reads) >= hyp.stat().st_size  # read it all
