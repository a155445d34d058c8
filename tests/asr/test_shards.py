"""Large runs split into shards: the same split in every process, each shard's outputs
and record, `sbasr merge` in input order, and torchrun (2 CPU processes, gloo) giving what
one process gives, with a killed rank resumed by --skip-existing.

The recogniser is the shared fake tone engine (in other processes through
fake_sbasr.py), so what is checked is the plumbing, in seconds."""

# ruff: noqa: F811 - the fixtures of fakes, imported by name
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import SR
from fakes import fake_cli, fake_vad, invoke, tone  # noqa: F401

from sbasr.asr.inputs import Recording, expand_inputs
from sbasr.asr.segments import Span
from sbasr.asr.shards import split

HERE = Path(__file__).parent


def _manifest(tmp_path: Path, n: int = 7) -> Path:
    """n files of one tone each (different pitches and lengths), and one broken file."""
    rows = []
    for i in range(n):
        path = tmp_path / "audio" / f"f{i}.wav"
        path.parent.mkdir(exist_ok=True)
        audio = np.concatenate([np.zeros(SR // 5, np.float32), tone(220 + 40 * i, 0.5 + 0.3 * i)])
        sf.write(path, audio, SR)
        rows.append({"id": f"u{i}", "audio": str(path), "language": "en"})
    (tmp_path / "audio" / "bad.wav").write_bytes(b"RIFF not audio")
    rows.insert(3, {"id": "bad", "audio": str(tmp_path / "audio" / "bad.wav")})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def _one_process(tmp_path: Path, manifest: Path) -> list[str]:
    """The keyed lines of a plain run, in input order."""
    out = tmp_path / "one"
    invoke("transcribe", str(manifest), "-f", "keyed", "-o", str(out))
    recordings, _ = expand_inputs([manifest])
    return [
        line
        for r in recordings
        if (out / f"{r.id}.keyed").exists()
        for line in (out / f"{r.id}.keyed").read_text().splitlines()
    ]


def test_split_is_by_duration_and_the_same_everywhere():
    seconds = [30, 5, 5, 20, 10, 10, 1, 19]
    recs = [Recording(f"r{i}", f"r{i}.wav", [Span(0, s)]) for i, s in enumerate(seconds)]
    parts = split(recs, 3)
    assert parts == split(list(recs), 3)  # deterministic
    assert sorted(i for p in parts for i in p) == list(range(8))
    assert all(p == sorted(p) for p in parts)  # each shard in input order
    loads = [sum(seconds[i] for i in p) for p in parts]
    assert max(loads) - min(loads) <= 5, loads  # by duration, not by count
    assert split(recs, 1) == [list(range(8))]


def test_shards_then_merge_give_what_one_process_gives(tmp_path, fake_cli):
    manifest = _manifest(tmp_path)
    expected = _one_process(tmp_path, manifest)
    out = tmp_path / "sharded"
    args = ["transcribe", str(manifest), "-f", "keyed", "-o", str(out)]
    first = invoke(*args, "--shard", "0/2")
    assert "shard 0/2: " in first.output
    early = invoke("merge", str(out))
    assert early.exit_code == 2 and "shard 1/2 has no record" in early.output
    second = invoke(*args, "--shard", "1/2")
    assert second.exit_code + first.exit_code == 1  # the bad file failed in one of them
    merged = invoke("merge", str(out))
    assert merged.exit_code == 1, merged.output
    assert "merged 8 recordings of 2 shards (7 segments, 1 failed)" in merged.output
    assert "bad.wav: cannot decode audio" in merged.output
    assert (out / "merged" / "all.keyed").read_text().splitlines() == expected
    rows = [json.loads(x) for x in (out / "merged" / "all.jsonl").read_text().splitlines()]
    assert [f"{r['id']} {r['text']}" for r in rows] == expected
    assert "bad.wav" in (out / "merged" / "failed.txt").read_text()
    bad = invoke(*args, "--shard", "2/2")
    assert bad.exit_code == 2 and "K counts from 0 to N - 1" in bad.output


def _torchrun(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    return subprocess.run(
        [*cmd, str(HERE / "fake_sbasr.py"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        timeout=300,
    )


def test_torchrun_ranks_give_what_one_process_gives_and_resume(tmp_path, fake_cli):
    manifest = _manifest(tmp_path)
    expected = _one_process(tmp_path, manifest)
    out = tmp_path / "ranks"
    args = ["transcribe", str(manifest), "-f", "keyed", "-o", str(out)]
    # rank 1 is killed before its third recording: the run fails, nothing is merged
    killed = _torchrun(*args, env={"FAKE_SBASR_DIE": "1:2"})
    assert killed.returncode != 0
    assert not (out / "merged").exists()
    done_before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.keyed")}
    assert done_before
    resumed = _torchrun(*args, "--skip-existing")
    err = resumed.stderr
    assert "shard 1/2: 2 transcribed, 2 skipped" in err  # rank 0 may have been cut short too
    assert "merged 8 recordings of 2 shards (7 segments, 1 failed)" in err
    assert resumed.returncode != 0  # the bad file is listed as failed
    assert (out / "merged" / "all.keyed").read_text().splitlines() == expected
    assert all(
        (out / name).stat().st_mtime_ns == stamp for name, stamp in done_before.items()
    )  # what was done was not done again
