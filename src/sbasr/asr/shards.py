"""Splitting a large run over processes and machines, and joining their outputs.

Every process expands the same inputs and splits them the same way (by total audio
duration, longest first onto the least loaded shard), so shard K of N needs nothing but
K and N: torchrun's RANK and WORLD_SIZE, or `--shard K/N` from a job array. Each shard
writes its recordings' outputs as a plain run does, and keeps a record of what it did
(`OUTPUT_DIR/.sbasr-shards/shard-K-of-N.jsonl`: the recordings it was given, then one
line per recording done or failed, appended as they finish), so that a killed shard
resumes with `--skip-existing` and `merge` joins the records in input order.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import SbasrError
from ..io.files import write_atomic
from .inputs import Recording

RECORDS = ".sbasr-shards"  # the shards' records, inside the output directory
MERGED = "merged"  # the joined outputs, inside the output directory


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` as (K, N), K from 0 to N - 1; anything else is an SbasrError."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SbasrError(f"--shard {text}: give K/N, e.g. 0/4 for the first of four") from None
    if n < 1 or not 0 <= k < n:
        raise SbasrError(f"--shard {text}: K counts from 0 to N - 1 (0/{max(n, 1)} is the first)")
    return k, n


def torchrun_shard(env: dict[str, str] | None = None) -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when run by torchrun with more than one process."""
    env = dict(os.environ) if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        return int(env["RANK"]), world, int(env.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        return None


def recording_seconds(rec: Recording) -> float:
    """How much audio a recording has to decode: its oracle segments, else the file's
    duration from its header (0 for a file that cannot be read: it fails in its shard)."""
    if rec.spans:
        return sum(s.duration for s in rec.spans)
    try:
        import soundfile as sf

        return float(sf.info(rec.path).duration)
    except Exception:
        pass
    try:
        import av

        with av.open(rec.path) as container:
            return (container.duration or 0) / 1_000_000
    except Exception:
        return 0.0


def split(recordings: list[Recording], shards: int) -> list[list[int]]:
    """The indices of `recordings` each shard transcribes, in input order: longest first
    onto the shard with the least audio so far (ties: the lower index), so shards take
    about equal time, and every process that splits the same list splits it alike."""
    seconds = [round(recording_seconds(r), 3) for r in recordings]
    loads = [(0.0, k) for k in range(shards)]
    parts: list[list[int]] = [[] for _ in range(shards)]
    for i in sorted(range(len(recordings)), key=lambda i: (-seconds[i], i)):
        load, k = min(loads)
        parts[k].append(i)
        loads[k] = (load + seconds[i], k)
    return [sorted(p) for p in parts]


def plan_digest(recordings: list[Recording]) -> str:
    """What the shards must agree on: the same recordings in the same order."""
    ids = "\n".join(r.id for r in recordings).encode("utf-8")
    return hashlib.blake2b(ids, digest_size=8).hexdigest()


def record_path(output_dir: Path, k: int, n: int) -> Path:
    return Path(output_dir) / RECORDS / f"shard-{k}-of-{n}.jsonl"


class ShardRecord:
    """What shard K of N was given and has done, on disk as it goes.

    With `resume`, what an earlier run of the same shard of the same inputs recorded is
    kept (a torn last line of a killed run is dropped); otherwise it starts afresh."""

    def __init__(
        self,
        output_dir: Path,
        k: int,
        n: int,
        recordings: list[Recording],
        mine: list[int],
        resume: bool,
    ) -> None:
        self.path = record_path(output_dir, k, n)
        header = {
            "shard": k,
            "of": n,
            "inputs": len(recordings),
            "plan": plan_digest(recordings),
            "recordings": [[i, recordings[i].id] for i in mine],
        }
        self.entries: dict[str, dict] = {}
        if resume and self.path.exists():
            old, entries = read_record(self.path)
            if old and old.get("plan") == header["plan"]:
                self.entries = entries
        lines = [header, *self.entries.values()]
        write_atomic(self.path, "".join(_line(x) for x in lines))

    def finished(self, rec: Recording) -> bool:
        """Whether the recording was transcribed (not failed) by an earlier run."""
        entry = self.entries.get(rec.id)
        return entry is not None and "error" not in entry

    def add(self, index: int, rec: Recording, entry: dict) -> None:
        """A recording done (`segments`, `duration`) or failed (`error`): one line, flushed,
        written after its outputs so that a recorded recording has them."""
        entry = {"index": index, "id": rec.id, "audio": rec.path, **entry}
        self.entries[rec.id] = entry
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(_line(entry))


def read_record(path: Path) -> tuple[dict | None, dict[str, dict]]:
    """A shard's header and its latest entry per recording id."""
    header: dict | None = None
    entries: dict[str, dict] = {}
    for line in path.read_text("utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # the torn last line of a killed shard: that recording is redone
        if not isinstance(row, dict):
            continue
        if "shard" in row and header is None:
            header = row
        elif "id" in row and "index" in row:
            entries[row["id"]] = row
    return header, entries


@dataclass
class Merged:
    """What `merge` joined: counts, where it wrote, and the recordings that failed."""

    shards: int = 0
    recordings: int = 0
    segments: int = 0
    failures: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def merge(output_dir: str | os.PathLike[str]) -> Merged:
    """Join a sharded transcription's outputs, in input order.

    Writes `merged/all.keyed` and `merged/all.jsonl` (a segment per line), and lists the
    recordings that failed in `merged/failed.txt`.

    Args:
        output_dir: The `--output-dir` every shard of the run wrote to.

    Returns:
        What was merged: files, counts and failures.

    Raises:
        SbasrError: A shard has not finished (failures count as finished); the message
            says which to run or resume.
    """
    from .pipeline import Segment
    from .writers import KeyedWriter

    root = Path(output_dir)
    paths = sorted((root / RECORDS).glob("shard-*-of-*.jsonl"))
    if not paths:
        raise SbasrError(f"{root}: no shard records ({RECORDS}/) here: nothing to merge")
    shards = {p: read_record(p) for p in paths}
    counts = {h["of"] for h, _ in shards.values() if h}
    plans = {h["plan"] for h, _ in shards.values() if h}
    if len(counts) != 1 or len(plans) != 1:
        raise SbasrError(
            f"{root / RECORDS}: records of different splits or inputs "
            f"({len(counts)} shard counts, {len(plans)} input lists): remove the old ones"
        )
    (n,) = counts
    have = {h["shard"]: (h, e) for h, e in shards.values() if h}
    absent = [f"{k}/{n}" for k in range(n) if k not in have]
    if absent:
        raise SbasrError(
            f"{root}: shard {', '.join(absent)} has no record here: run it (or, under "
            "torchrun, put the output directory where every machine writes)"
        )
    rows: list[dict] = []
    unfinished: list[str] = []
    for k in range(n):
        header, entries = have[k]
        todo = [rid for _, rid in header["recordings"] if rid not in entries]
        if todo:
            unfinished.append(f"shard {k}/{n}: {len(todo)} of {len(header['recordings'])}")
        rows += entries.values()
    if unfinished:
        raise SbasrError(
            f"{root}: recordings not transcribed yet ({'; '.join(unfinished)}): resume "
            "with the same command and --skip-existing"
        )
    rows.sort(key=lambda r: r["index"])
    out = Merged(shards=n, recordings=len(rows))
    keyed, lines = [], []
    render = KeyedWriter().render
    for row in rows:
        if "error" in row:
            out.failures.append(row["error"])
            continue
        segments = [Segment(**s) for s in row["segments"]]
        out.segments += len(segments)
        keyed.append(render(segments, row["id"], row["audio"], row.get("duration", 0.0)))
        lines += [_line(s) for s in row["segments"]]
    target = root / MERGED
    out.files = [
        write_atomic(target / "all.keyed", "".join(keyed)),
        write_atomic(target / "all.jsonl", "".join(lines)),
    ]
    failed = target / "failed.txt"
    if out.failures:
        out.files.append(write_atomic(failed, "".join(f"{m}\n" for m in out.failures)))
    elif failed.exists():
        failed.unlink()
    return out


def _line(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"
