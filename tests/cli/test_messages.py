"""What the commands say besides their results: hints where a result needs a flag to
mean something, and where outputs went."""

from __future__ import annotations

from conftest import run_cli, write_keyed


def test_score_without_a_language_names_the_flags_that_give_one(tmp_path):
    hyp = write_keyed(tmp_path / "hyp.txt", [("call-1", "hello there"), ("call-2", "bye")])
    ref = write_keyed(tmp_path / "ref.txt", [("call-1", "hello there"), ("call-2", "goodbye")])
    out = run_cli("score", str(hyp), str(ref))
    assert out.returncode == 0 and "MER" in out.stdout
    assert "2 utterances have no language" in out.stdout
    assert "--language CODE" in out.stdout and "--language-from-key" in out.stdout
    # with a language, nothing to say
    out = run_cli("score", str(hyp), str(ref), "--language", "en")
    assert out.returncode == 0 and "no language" not in out.stdout
