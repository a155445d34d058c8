"""What `sbasr.score` means: matching by id, languages, units, normalisation, pooling."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, write_keyed

from sbasr import SbasrError, ScoreReport, read_transcripts, score
from sbasr.scoring.api import gc_paused
from sbasr.scoring.normalize import basic_text, mlcslm_text, normalize
from sbasr.scoring.parallel import fork_map
from sbasr.scoring.units import tokens


def test_matches_by_id_not_by_line_order(tmp_path):
    ref = write_keyed(tmp_path / "ref", [("a", "one two"), ("b", "three four")])
    hyp = write_keyed(tmp_path / "hyp", [("b", "three four"), ("a", "one two")])
    assert score(hyp, ref).pooled.errors == 0


def test_missing_hypothesis_counts_as_deletions_and_is_reported():
    r = score({"a": "x y"}, {"a": "x y", "b": "p q r"})
    assert r.missing == ["b"]
    assert (r.pooled.deletions, r.pooled.ref_tokens, r.pooled.errors) == (3, 5, 3)
    missing = next(u for u in r.utterances() if u.id == "b")
    assert missing.hypothesis is None and missing.deletions == 3


def test_extra_hypothesis_is_reported_not_scored_and_strict_fails():
    r = score({"a": "x", "zz": "junk words"}, {"a": "x"})
    assert r.extra == ["zz"] and r.pooled.errors == 0 and r.pooled.utterances == 1
    with pytest.raises(SbasrError, match="1 hypothesis ids are not in"):
        score({"a": "x", "zz": "junk"}, {"a": "x"}, strict=True)
    with pytest.raises(SbasrError, match="1 reference ids have no hypothesis"):
        score({}, {"a": "x"}, strict=True)


def test_empty_and_one_character_hypotheses_are_real_utterances(tmp_path):
    # jiwer's own CLI drops such lines silently; each must count here.
    ref = write_keyed(tmp_path / "ref", [("a", "one two three"), ("b", "x"), ("c", "y z")])
    hyp = write_keyed(tmp_path / "hyp", [("a", ""), ("b", "x"), ("c", "q")])
    assert hyp.read_text().splitlines()[0] == "a"
    r = score(hyp, ref)
    assert r.missing == [] and r.pooled.utterances == 3
    assert (r.pooled.deletions, r.pooled.substitutions, r.pooled.errors) == (4, 1, 5)


def test_pooled_rate_is_total_errors_over_total_tokens_not_mean_of_rates():
    ref = {"English-1": "a b c d e f g h i j", "Japanese-1": "日本"}
    hyp = {"English-1": "a b c d e f g h i x", "Japanese-1": "日"}
    r = score(hyp, ref, language_from_key=True)
    by = {row.language: row for row in r.languages}
    assert by["en"].rate == pytest.approx(0.1) and by["ja"].rate == pytest.approx(0.5)
    assert r.pooled.rate == pytest.approx(2 / 12)  # the mean of rates would be 0.3
    assert r.pooled.metric == "CER/WER"


def test_units_follow_language_and_unit_overrides():
    ref, hyp = {"k": "今日は 良い"}, {"k": "今日は 悪い"}
    assert score(hyp, ref, language="ja").pooled.ref_tokens == 5  # characters
    assert score(hyp, ref, language="ja", unit="word").pooled.ref_tokens == 2
    assert score(hyp, ref, language="en").pooled.ref_tokens == 2
    assert score({"k": "ab"}, {"k": "abc"}, language="en", unit="char").pooled.errors == 1


def test_mixed_unit_keeps_latin_words_whole_inside_japanese_as_mlcslm_does():
    assert tokens("今日iphoneを 買った", "mixed") == ["今", "日", "iphone", "を", "買", "っ", "た"]
    assert tokens("สวัสดี ครับ", "mixed") == list("สวัสดีครับ")
    assert tokens("a  b ", "char") == ["a", "b"]


def test_language_sources_flag_manifest_key(tmp_path):
    manifest = tmp_path / "ref.jsonl"
    manifest.write_text(
        json.dumps({"id": "u1", "text": "東京", "language": "Japanese"})
        + "\n"
        + json.dumps({"id": "English-u2", "text": "a b"})
        + "\n",
        "utf-8",
    )
    hyp = {"u1": "東京", "English-u2": "a b"}
    langs = {row.language for row in score(hyp, manifest, language_from_key=True).languages}
    assert langs == {"ja", "en"}
    assert {row.language for row in score(hyp, manifest).languages} == {"ja", None}
    assert {row.language for row in score(hyp, manifest, language="fr").languages} == {"fr"}
    with pytest.raises(SbasrError, match="unknown language"):
        score(hyp, manifest, language="Klingonese")


def test_mlcslm_normalisation_is_the_challenge_rule():
    text = "Hello, World!  It's a well-known 42nd   test? ¿Sí? 東京。「x」"
    assert mlcslm_text(text) == "hello world it's a well-known 42nd test sí 東京「x」"


def test_whisper_normaliser_keeps_thai_marks_and_applies_english_rules():
    thai = "สวัสดีครับ"
    assert basic_text(thai) == thai  # Whisper's own basic normaliser would split it
    out = normalize(["Mr. Smith's colour is twenty-one!", thai], ["en", "th"], "whisper")
    assert out[0] == "mister smith is color is 21"  # Whisper's rule expands "'s"
    assert out[1] == thai


def test_normalised_texts_have_canonical_spacing():
    out = normalize(["  a\t b  ", "", " ,  ", "c\u3000d"], [None] * 4, "mlcslm")
    assert out == ["a b", "", "", "c d"]


def test_by_line_pairs_plain_text_by_position(tmp_path):
    (tmp_path / "r.txt").write_text("one two\n\nthree\n", "utf-8")
    (tmp_path / "h.txt").write_text("one too\nextra\nthree\n", "utf-8")
    r = score(tmp_path / "h.txt", tmp_path / "r.txt", by_line=True)
    assert (r.pooled.utterances, r.pooled.substitutions, r.pooled.insertions) == (3, 1, 1)
    (tmp_path / "short.txt").write_text("one\n", "utf-8")
    with pytest.raises(SbasrError, match="--by-line needs one line per utterance"):
        score(tmp_path / "short.txt", tmp_path / "r.txt", by_line=True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a x\nb y\na z\n", r"ref:3: duplicate utterance id 'a'"),
        (b"a x\nb \xff\xfe\n", r"ref:2: not valid UTF-8"),
        (b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', r"ref:2: duplicate"),
        (b'{"id": "a", "text": "x"}\n{"text": "y"}\n', r"ref:2: no 'id' field"),
        (b'{"id": "a", "text": "x"}\n{oops\n', r"ref:2: invalid JSON"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, content, message):
    ref = tmp_path / "ref"
    ref.write_bytes(content)
    with pytest.raises(SbasrError, match=message):
        score({"a": "x"}, ref)


@pytest.mark.parametrize("side", ["hyp", "ref"])
def test_jsonl_row_without_a_text_field_is_an_error_not_silence(tmp_path, side):
    bad = tmp_path / f"{side}.jsonl"
    bad.write_text('{"id": "a", "text": "x y"}\n{"id": "b", "transcript": "x"}\n', "utf-8")
    good = {"a": "x y", "b": "x"}
    args = (bad, good) if side == "hyp" else (good, bad)
    with pytest.raises(SbasrError, match=rf"{bad}:2: no text field; name it 'text'"):
        score(*args)
    # A text field that is there but empty (or null) is an empty transcript, scored.
    bad.write_text('{"id": "a", "text": "x y"}\n{"id": "b", "text": ""}\n', "utf-8")
    assert score(*args).pooled.errors == 1


def test_keyed_ids_may_begin_with_a_brace(tmp_path):
    keyed = write_keyed(tmp_path / "k", [("{noise}-1", "a b"), ("u2", "c")])
    t = read_transcripts(keyed)
    assert (t.ids, t.texts) == (["{noise}-1", "u2"], ["a b", "c"])
    # JSON Lines is told by its first non-blank line being a JSON object.
    jsonl = tmp_path / "j"
    jsonl.write_text('\n  {"id": "{x}", "text": "a"}\n', "utf-8")
    assert read_transcripts(jsonl).ids == ["{x}"]
    for first in ('{"a": 1} text', "{} text", "[1] text", "{"):
        (tmp_path / "k2").write_text(f"{first}\nu2 c\n", "utf-8")
        assert read_transcripts(tmp_path / "k2").ids == [first.split()[0], "u2"]


def test_no_matching_ids_is_an_error_and_some_matching_is_scored(tmp_path):
    ref = {"a": "x y", "b": "z"}
    with pytest.raises(SbasrError, match=r"<mapping>: no hypothesis id matches a reference id"):
        score({"A": "x y", "B": "z"}, ref)
    with pytest.raises(SbasrError, match="0 hypotheses, empty; 2 references, first: 'a'"):
        score({}, ref)
    with pytest.raises(SbasrError, match="no hypothesis id matches"):
        score({"a": "x"}, {})
    r = score({"a": "x y", "c": "q"}, ref)
    assert (r.missing, r.extra, r.pooled.deletions) == (["b"], ["c"], 1)


def test_cli_fails_on_no_matching_ids_and_warns_on_some(tmp_path):
    ref = write_keyed(tmp_path / "ref.txt", [("a", "x y"), ("b", "z")])
    other = write_keyed(tmp_path / "hyp.txt", [("A", "x y"), ("B", "z")])
    out = run_cli("score", str(other), str(ref))
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"sbasr: error: {other}: no hypothesis id matches a reference id")
    some = write_keyed(tmp_path / "some.txt", [("a", "x y")])
    out = run_cli("score", str(some), str(ref))
    assert out.returncode == 0, out.stderr
    assert "1 reference utterances have no hypothesis and count as all deletions" in out.stdout
    misnamed = tmp_path / "hyp.jsonl"
    misnamed.write_text('{"id": "a", "transcript": "x y"}\n', "utf-8")
    out = run_cli("score", str(misnamed), str(ref))
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"sbasr: error: {misnamed}:1: no text field; name it 'text' "
        "(this row has: 'id', 'transcript')"
    )


def test_unreadable_inputs(tmp_path):
    with pytest.raises(SbasrError, match="no such file"):
        score({"a": "x"}, tmp_path / "nope")
    with pytest.raises(SbasrError, match="is a directory"):
        score({"a": "x"}, tmp_path)


def test_texts_with_odd_characters_do_not_break_batching():
    ref = {"a": "x\ny z", "b": "p \x01 q", "c": "  "}
    hyp = {"a": "x y z", "b": "p q", "c": ""}
    r = score(hyp, ref, normalize="none")
    assert (r.pooled.errors, r.pooled.ref_tokens) == (1, 6)  # "\x01" is a token here


def test_report_gives_each_utterance_in_reference_order():
    ref = {"a": "x z", "b": "今日", "c": "q r"}
    r = score({"b": "今日", "a": "x y"}, ref, language="en")
    assert r.ids == ["a", "b", "c"]
    assert r.references == ["x z", "今日", "q r"] and r.hypotheses == ["x y", "今日", None]
    assert r.utterance_languages == ["en"] * 3 and r.units == ["word"] * 3
    # substitutions, deletions, insertions, reference tokens
    assert r.counts.tolist() == [[1, 0, 0, 2], [0, 0, 0, 1], [0, 2, 0, 2]]
    assert [(u.id, u.errors) for u in r.utterances()] == [("a", 1), ("b", 0), ("c", 2)]


def test_report_is_built_by_keyword_with_matching_columns():
    r = score({"a": "x"}, {"a": "x y"})
    fields = {f.name: getattr(r, f.name) for f in dataclasses.fields(ScoreReport)}
    assert not [name for name in fields if name.startswith("_")]
    rebuilt = ScoreReport(**fields)
    assert rebuilt == r and list(rebuilt.utterances()) == list(r.utterances())
    with pytest.raises(TypeError):
        ScoreReport(*fields.values())
    with pytest.raises(ValueError, match="per-utterance fields"):
        ScoreReport(**{**fields, "hypotheses": []})


class _WatchedMapping(dict):
    """Notes whether the garbage collector was on when scoring read it."""

    seen: list[bool]

    def __iter__(self):
        self.seen.append(gc.isenabled())
        return super().__iter__()


def test_gc_is_off_while_scoring_and_restored_after_even_on_error():
    ref = _WatchedMapping({"a": "x"})
    ref.seen = []
    assert gc.isenabled()
    score({"a": "x"}, ref)
    assert ref.seen and not any(ref.seen) and gc.isenabled()
    with pytest.raises(SbasrError, match="unknown normaliser"):
        score({"a": "x"}, ref, normalize="nope")
    assert gc.isenabled()


def test_gc_paused_restores_the_previous_state():
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def _square_or_fail(x: int) -> int:
    if x == 13:
        raise ValueError(f"bad item {x}")
    return x * x


def test_fork_map_keeps_order_and_raises_what_a_worker_raised():
    assert fork_map(_square_or_fail, [1, 2, 3, 4]) == [1, 4, 9, 16]
    big = list(range(10**6))
    # A closure cannot be pickled: it reaches the workers by fork, not through a pipe.
    assert fork_map(lambda r: sum(big[r]), [slice(0, 10), slice(10, 20)]) == [45, 145]
    with pytest.raises(ValueError, match="bad item 13"):
        fork_map(_square_or_fail, [1, 13])  # 13 runs in a worker
    with pytest.raises(ValueError, match="bad item 13"):
        fork_map(_square_or_fail, [13, 1])  # 13 runs here


class _Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling")


def _dies_or_fails(x: int) -> int:
    if x == 1:
        os._exit(3)  # a worker killed mid-way: no result comes back
    if x == 2:
        raise _Unpicklable("odd")
    return x


def test_fork_map_reports_a_dead_worker_and_leaves_no_worker_behind():
    with pytest.raises(RuntimeError, match="ended without a result"):
        fork_map(_dies_or_fails, [0, 1])
    with pytest.raises(RuntimeError, match="_Unpicklable"):  # its text, when not picklable
        fork_map(_dies_or_fails, [0, 2])
    with pytest.raises(ValueError, match="bad item 13"):  # here, while workers run
        fork_map(_square_or_fail, [13, 1, 2])
    children = Path(f"/proc/self/task/{os.getpid()}/children")  # Linux: this test's own
    if children.exists():
        assert children.read_text().split() == []  # every worker was reaped


def test_metric_names_the_unit_an_unknown_language_is_scored_in():
    ref, hyp = {"k": "今日は good"}, {"k": "今日は bad"}
    assert score(hyp, ref).pooled.metric == "MER"  # language unknown: mixed tokens
    assert score(hyp, ref).languages[0].metric == "MER"
    assert score(hyp, ref, language="ja").languages[0].metric == "CER"
    assert score(hyp, ref, language="en").pooled.metric == "WER"


def test_the_table_never_cuts_counts_short_in_a_narrow_terminal():
    import io

    from rich.console import Console

    from sbasr.scoring.report import render_table

    words = " ".join(["w"] * 1_234_567)
    report = score({"English-1": words + " x"}, {"English-1": words}, language_from_key=True)
    out = io.StringIO()
    render_table(report, Console(file=out, width=40))
    text = out.getvalue()
    assert "1,234,567" in text and "…" not in text
    assert "English (en)" in text and "WER" in text


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c"])
def test_keyed_lines_end_at_newline_alone(tmp_path, sep):
    # A line separator inside a transcript is whitespace between words, as meeteval reads it.
    ref = write_keyed(tmp_path / "ref", [("u1", "one two three four"), ("u2", "five six")])
    hyp = tmp_path / "hyp"
    hyp.write_text(f"u1 one two{sep}three four\nu2 five six\n", "utf-8")
    r = score(hyp, ref)
    assert (r.ids, r.pooled.errors, r.extra) == (["u1", "u2"], 0, [])
    rows = tmp_path / "hyp.jsonl"
    rows.write_text(
        json.dumps({"id": "u1", "text": f"one two{sep}three four"}, ensure_ascii=False) + "\n",
        "utf-8",
    )
    assert score(rows, {"u1": "one two three four"}).pooled.errors == 0
    assert read_transcripts(hyp, by_line=True).texts[0] == f"u1 one two{sep}three four"


def test_both_files_empty_is_an_error(tmp_path):
    (tmp_path / "hyp").write_text("")
    (tmp_path / "ref").write_text("")
    with pytest.raises(SbasrError, match="no hypothesis id matches a reference id"):
        score(tmp_path / "hyp", tmp_path / "ref")
    run = run_cli("score", str(tmp_path / "hyp"), str(tmp_path / "ref"))
    assert run.returncode == 2 and "n/a" not in run.stdout
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"sbasr: error: {tmp_path / 'hyp'}: no hypothesis id matches")


@pytest.mark.parametrize("lines", [3, 30_000])  # the ordinary path, and the one in parts
def test_a_pipe_is_read_once(tmp_path, lines):
    pairs = [(f"u{i:06d}", f"w{i} x y") for i in range(lines)]
    ref = write_keyed(tmp_path / "ref", pairs)
    hyp = write_keyed(tmp_path / "hyp", [*pairs[:-1], (pairs[-1][0], "w x")])
    want = score(hyp, ref).pooled
    shell = f"{sys.executable} -m sbasr score --json <(cat {hyp}) <(cat {ref})"
    run = subprocess.run(["bash", "-c", shell], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)["pooled"]
    assert (got["utterances"], got["errors"]) == (lines, want.errors) and want.errors == 2
    with open(hyp) as stdin:
        run = subprocess.run(
            [sys.executable, "-m", "sbasr", "score", "--json", "/dev/stdin", str(ref)],
            stdin=stdin,
            capture_output=True,
            text=True,
        )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["pooled"]["utterances"] == lines
