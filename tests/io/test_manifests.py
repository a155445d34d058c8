"""One manifest reader: transcription, training and scoring see the same utterances.

No audio is decoded here: the readers only name files, so empty files stand in for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from sbasr import SbasrError, read_transcripts
from sbasr.asr.inputs import Recording, expand_inputs
from sbasr.io.manifests import (
    centiseconds,
    language_code,
    read_utterances,
    recording_id,
    segment_id,
)
from sbasr.training.data import read_examples


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _transcribed(paths: list[Path], oracle: bool = False) -> list[Recording]:
    recordings, problems = expand_inputs(paths, oracle)
    assert not problems, problems
    return recordings


def _utterances(recordings: list[Recording]) -> list[tuple[str, str | None]]:
    """(id, language) of every utterance transcription will produce ids for."""
    out = []
    for rec in recordings:
        if rec.spans is None:
            out.append((rec.id, rec.language))
        else:
            out += [(s.id, s.language) for s in rec.spans]
    return sorted(out)


def test_language_names_become_codes_and_unknown_ones_are_kept():
    assert [language_code(v) for v in ("English", "en", "ja_JP", "Japanese", " fr ")] == [
        "en",
        "en",
        "ja",
        "ja",
        "fr",
    ]
    # Kept as written, so that training reports it and decoding refuses it, not a guess.
    assert language_code("Klingon") == "Klingon"
    assert language_code("") is None and language_code(None) is None


def test_same_jsonl_rows_give_same_ids_and_languages_to_transcription_and_training(tmp_path):
    rows = [
        {"id": "u1", "audio": "a.wav", "start": 0.5, "end": 2.0, "language": "English"},
        {"audio": "a.wav", "start": 2.5, "end": 4.0, "speaker": "B", "language": "en"},
        {"audio": "a.wav", "start": 5.0, "end": 6.0, "speaker": "B", "language": "en"},
        {"audio": "sub/b.flac", "lang": "ja_JP"},
        {"utt_id": "w", "audio": "c.wav", "language": "Japanese"},
    ]
    manifest = _write_jsonl(tmp_path / "m.jsonl", rows)
    examples = read_examples(manifest)
    expected = [
        ("a-B-000250-000400", "en"),  # no id: the MLC-SLM style segment id
        ("a-B-000500-000600", "en"),
        ("b", "ja"),  # a whole file without an id: its stem
        ("u1", "en"),
        ("w", "ja"),
    ]
    assert sorted((e.id, e.language) for e in examples) == expected
    recordings = _transcribed([manifest])
    assert _utterances(recordings) == expected
    # Segments without ids stay apart: they are not joined as one utterance.
    (a,) = [r for r in recordings if r.spans]
    assert a.id == "a" and len(a.spans) == 3
    assert Path(examples[3].audio) == tmp_path / "sub" / "b.flac"
    assert [r.path for r in recordings if r.id == "b"] == [examples[3].audio]


def test_nemo_fields(tmp_path):
    row = {
        "audio_filepath": "x.wav",
        "offset": 1.25,
        "duration": 2.5,
        "text": "hello",
        "lang": "English",
    }
    (ex,) = read_examples(_write_jsonl(tmp_path / "nemo.json", [row]))
    assert (ex.audio, ex.start, ex.end, ex.language, ex.text) == (
        str(tmp_path / "x.wav"),
        1.25,
        3.75,
        "en",
        "hello",
    )
    (rec,) = _transcribed([tmp_path / "nemo.json"])
    assert [(s.start, s.end, s.language) for s in rec.spans] == [(1.25, 3.75, "en")]
    # NeMo's duration alone is the length of the whole file: no span.
    (whole,) = read_examples(
        _write_jsonl(tmp_path / "w.jsonl", [{"audio": "x.wav", "duration": 9}])
    )
    assert (whole.start, whole.end) == (None, None)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "no audio"}', "no 'audio' (or 'audio_filepath') field"),
        ('{"audio": "a.wav", "start": 2, "end": 1}', "segment ends before it starts"),
        ('{"audio": "a.wav", "start": "soon", "end": 1}', "'start' must be a number"),
        ('{"audio": "a.wav", "offset": 3}', "a start time needs an 'end'"),
        ('{"audio": "a.wav", "text": 42}', "'text' must be a string"),
        ('{"audio": "a.wav", "channel": 1.5}', "'channel' must be a whole number"),
        ('{"audio": "a.wav", "start": -5, "end": 2}', "segment starts before 0 (start -5 s)"),
        ('{"audio": "a.wav", "offset": -1, "duration": 3}', "segment starts before 0"),
        ('{"audio": "a.wav", "start": 2, "end": 2}', "segment ends before it starts"),
        ('{"audio": "a.wav", "end": -1}', "segment ends before it starts"),
        ('{"audio": "a.wav", "start": "abc", "end": 2}', "'start' must be a number, not 'abc'"),
        ('{"audio": "a.wav", "start": "nan", "end": 2}', "'start' must be a finite number"),
        ('{"audio": "a.wav", "start": 0, "end": Infinity}', "'end' must be a finite number"),
        ('{"audio": "a.wav", "channel": "left"}', "'channel' must be a whole number from 0"),
        ('{"audio": "a.wav", "channel": -1}', "'channel' must be a whole number from 0"),
        ('{"audio": "a.wav", oops}', "invalid JSON"),
        ('["a.wav"]', "expected a JSON object per line"),
        ('{"id": "my call", "audio": "a.wav"}', "id 'my call' is not one token"),
    ],
)
def test_bad_rows_name_file_and_line_in_every_consumer(tmp_path, line, message):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(f'{{"audio": "ok.wav"}}\n\n{line}\n', "utf-8")
    where = f"{manifest}:3: {message}"
    with pytest.raises(SbasrError) as error:
        read_examples(manifest)
    assert str(error.value).startswith(where)
    recordings, problems = expand_inputs([manifest])
    assert recordings == [] and problems[0][1].startswith(where)


def test_bad_rows_are_one_line_errors_on_the_command_line(tmp_path):
    # What the issue reported: a negative start was accepted, and bad values must never
    # reach the user as a traceback. No model is loaded: the manifest fails first.
    (tmp_path / "x.wav").write_bytes(b"")
    for row, message in [
        ('{"id":"neg","audio":"x.wav","start":-5,"end":2}', "segment starts before 0"),
        ('{"id":"rev","audio":"x.wav","start":3,"end":2}', "segment ends before it starts"),
        ('{"id":"s","audio":"x.wav","start":"abc","end":2}', "'start' must be a number"),
        ('{"id":"c","audio":"x.wav","channel":"left"}', "'channel' must be a whole number"),
    ]:
        manifest = tmp_path / "m.jsonl"
        manifest.write_text(row + "\n", "utf-8")
        out = run_cli("transcribe", str(manifest))
        assert out.returncode != 0
        (line,) = out.stderr.strip().splitlines()
        assert line.startswith(f"sbasr: error: {manifest}:1: {message}")


def test_ids_take_times_exactly_as_the_mlcslm_baseline_writes_them():
    # The baseline: str(int(round(t, 2) * 100)).zfill(6), float product truncated.
    assert [centiseconds(t) for t in (21.935, 28.425, 28.445)] == ["002193", "002843", "002845"]
    assert [centiseconds(t) for t in (0, 0.5, 2.0, 12.34, 100.07, 3599.99)] == [
        "000000",
        "000050",
        "000200",
        "001234",
        "010007",
        "359999",
    ]
    assert centiseconds(0.29) == "000028"  # the baseline's own truncation, kept
    assert segment_id("rec", "B", 21.935, 28.445) == "rec-B-002193-002845"
    assert segment_id("rec", None, 1.0, 2.5) == "rec-000100-000250"  # no speaker made up


def test_mlcslm_segment_ids_match_the_baseline_for_awkward_times(tmp_path):
    audio = tmp_path / "English" / "c.wav"
    audio.parent.mkdir()
    audio.write_bytes(b"")
    audio.with_suffix(".txt").write_text("21.935 28.425 A hi\n28.445 30 B yo\n", "utf-8")
    ids = [u.id for u in read_utterances(tmp_path)]
    assert ids == ["English-c-A-002193-002843", "English-c-B-002845-003000"]
    (rec,) = _transcribed([tmp_path], oracle=True)
    assert [s.id for s in rec.spans] == ids
    audio.with_suffix(".txt").write_text("1 2 A x\n-0.5 3 B y\n", "utf-8")
    with pytest.raises(SbasrError, match=r"c\.txt:2: segment starts before 0"):
        read_utterances(tmp_path)


def test_ids_made_from_names_are_single_tokens(tmp_path):
    assert recording_id(Path("/x/my call.wav")) == "my_call"
    assert recording_id(Path("/x/My Calls/a \t b.wav"), Path("/x")) == "My_Calls-a_b"
    assert segment_id("my call", "spk 1", 1, 2) == "my_call-spk_1-000100-000200"
    (tmp_path / "my call.wav").write_bytes(b"")
    (rec,) = _transcribed([tmp_path / "my call.wav"])
    assert rec.id == "my_call"
    rows = [
        {"audio": "my call.wav"},
        {"audio": "my call.wav", "start": 1, "end": 2, "speaker": "agent one"},
        {"audio": "my call.wav", "start": 3, "end": 4, "speaker": "agent one"},
    ]
    manifest = _write_jsonl(tmp_path / "m.jsonl", rows)
    ids = [u.id for u in read_utterances(manifest)]
    assert ids == ["my_call", "my_call-agent_one-000100-000200", "my_call-agent_one-000300-000400"]
    assert _utterances(_transcribed([manifest])) == sorted((i, None) for i in ids)
    # Keyed output of these ids reads back as the same, distinct ids.
    keyed = tmp_path / "hyp.keyed"
    keyed.write_text("".join(f"{i} some text\n" for i in ids), "utf-8")
    assert read_transcripts(keyed).ids == ids
    audio = tmp_path / "dir" / "Eng lish" / "a call.wav"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"")
    audio.with_suffix(".txt").write_text("0 1 A x\n", "utf-8")
    assert [u.id for u in read_utterances(tmp_path / "dir")] == ["Eng_lish-a_call-A-000000-000100"]


def test_scoring_reads_the_same_id_and_language_fields(tmp_path):
    rows = [
        {"utt_id": "u1", "audio": "a.wav", "text": "hi", "lang": "English"},
        {"key": "u2", "audio": "a.wav", "text": None},
    ]
    manifest = _write_jsonl(tmp_path / "m.jsonl", rows)
    scored = read_transcripts(manifest)
    examples = read_examples(manifest)
    assert scored.ids == [e.id for e in examples] == ["u1", "u2"]
    assert scored.texts == [e.text for e in examples] == ["hi", ""]
    # Scoring keeps the name and resolves it itself; it is the same language.
    assert [language_code(v) for v in scored.languages] == [e.language for e in examples]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": ["x"]}\n', "utf-8")
    with pytest.raises(SbasrError, match=rf"{bad}:1: 'text' must be a string"):
        read_transcripts(bad)


def _mlcslm_tree(root: Path) -> None:
    for rel, lines in (
        ("English/American/call1.wav", "0.5 2.0 A hello there\n2.5 4.0 B hi\n"),
        ("raw/Japanese-call2.wav", "1.0 3.0 A こんにちは\n"),
        ("raw/call3.wav", "0 1 A x\n"),
    ):
        audio = root / rel
        audio.parent.mkdir(parents=True, exist_ok=True)
        audio.write_bytes(b"")
        audio.with_suffix(".txt").write_text(lines, "utf-8")


def test_mlcslm_directory_gives_same_ids_and_languages_to_both(tmp_path):
    _mlcslm_tree(tmp_path)
    examples = read_examples(tmp_path)
    expected = [
        ("English-American-call1-A-000050-000200", "en"),
        ("English-American-call1-B-000250-000400", "en"),
        ("raw-Japanese-call2-A-000100-000300", "ja"),  # the file name names it
        ("raw-call3-A-000000-000100", None),  # "raw" is not a language
    ]
    assert [(e.id, e.language) for e in examples] == expected
    assert [e.text for e in examples] == ["hello there", "hi", "こんにちは", "x"]
    recordings = _transcribed([tmp_path], oracle=True)
    assert _utterances(recordings) == expected
    rec = next(r for r in recordings if r.id == "English-American-call1")
    assert rec.segments_file == str(tmp_path / "English/American/call1.txt")
    # Without oracle segments a directory is just audio files, named the same way.
    plain = _transcribed([tmp_path])
    assert sorted(r.id for r in plain) == sorted(r.id for r in recordings)
    assert all(r.spans is None and r.language is None for r in plain)


def test_mlcslm_audio_without_its_segment_file_is_an_error_for_both(tmp_path):
    _mlcslm_tree(tmp_path)
    (tmp_path / "raw" / "call3.txt").unlink()
    message = f"{tmp_path / 'raw' / 'call3.wav'}: no MLC-SLM segment file call3.txt beside it"
    with pytest.raises(SbasrError, match="no MLC-SLM segment file"):
        read_examples(tmp_path)
    _, problems = expand_inputs([tmp_path], oracle_segments=True)
    assert problems == [(str(tmp_path), message)]


def _kaldi_dir(root: Path) -> Path:
    root.mkdir()
    (root / "wav.scp").write_text("rec1 audio/rec1.wav\nrec2 /abs/rec2.wav\n")
    (root / "text").write_text("u1 hello there\nu2 hi\nu3\n")
    (root / "segments").write_text("u1 rec1 0.5 2.0\nu2 rec1 2.5 4.0\n")
    (root / "utt2lang").write_text("u1 English\nu2 en\nu3 Spanish\n")
    (root / "utt2spk").write_text("u1 spkA\nu2 spkB\n")
    return root


def test_kaldi_directory_gives_same_ids_and_languages_to_both(tmp_path):
    kaldi = _kaldi_dir(tmp_path / "kaldi")
    examples = read_examples(kaldi)
    assert [(e.id, e.audio, e.start, e.end, e.language, e.speaker, e.text) for e in examples] == [
        ("u1", str(kaldi / "audio/rec1.wav"), 0.5, 2.0, "en", "spkA", "hello there"),
        ("u2", str(kaldi / "audio/rec1.wav"), 2.5, 4.0, "en", "spkB", "hi"),
        ("u3", "", None, None, "es", None, ""),  # no recording u3 in wav.scp
    ]
    assert read_utterances(kaldi) == examples
    # Transcription needs audio for every utterance: u3 has none.
    _, problems = expand_inputs([kaldi])
    assert problems == [(str(kaldi), f"{kaldi}: utterance u3 names no recording in wav.scp")]
    (kaldi / "text").write_text("u1 hello there\nu2 hi\n")
    (rec,) = _transcribed([kaldi])
    assert rec.id == "rec1" and [(s.id, s.speaker) for s in rec.spans] == [
        ("u1", "spkA"),
        ("u2", "spkB"),
    ]
    assert _utterances([rec]) == [("u1", "en"), ("u2", "en")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("segments", "u1 rec1 0.5\n", "segments:1: expected 'utt rec start end'"),
        ("segments", "u1 rec1 0.5 2.0\nu2 rec1 4 3\n", "segments:2: segment ends before"),
        ("segments", "u1 rec1 -5 2.0\n", "segments:1: segment starts before 0"),
        ("segments", "u1 rec1 abc 2.0\n", "segments:1: expected 'utt rec start end'"),
        ("segments", "u1 rec1 nan 2.0\n", "segments:1: segment times must be finite"),
        ("wav.scp", "rec1 sox a.wav -t wav - |\n", "wav.scp: command pipes are not supported"),
    ],
)
def test_bad_kaldi_files_name_file_and_line(tmp_path, name, content, message):
    kaldi = _kaldi_dir(tmp_path / "kaldi")
    (kaldi / name).write_text(content)
    with pytest.raises(SbasrError, match=message):
        read_examples(kaldi)
    _, problems = expand_inputs([kaldi])
    assert message.split(":")[0] in problems[0][1] and str(kaldi) in problems[0][1]


def test_empty_manifest_and_missing_paths(tmp_path):
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    with pytest.raises(SbasrError, match="the manifest is empty"):
        read_examples(empty)
    with pytest.raises(SbasrError, match="no such file or directory"):
        read_examples(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    with pytest.raises(SbasrError, match="no audio files in this directory"):
        read_examples(tmp_path / "d")
