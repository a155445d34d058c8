"""The comparison's Speech-LLM systems trained and decoded on a GPU, with the real weights.

benchmarks/compare/run.py trains every system on this 2-core CPU. The GPU machines lent
here have torch, transformers and peft but no PyAV, faster-whisper, CTranslate2 or gguf,
reach no registry and receive at most 64 MiB a call, so the work is split in three:

    python benchmarks/speechllm_gpu_real.py pack DATA PACK               # here
    python benchmarks/speechllm_gpu_real.py run PACK OUT [--smoke]       # on the GPU
    python benchmarks/speechllm_gpu_real.py finish PACK OUT DATA WORK    # here again

`pack` writes PACK/part1 ... part4 (each under 60 MiB): one tar, cut into the first
parts, of every utterance of DATA/{train,dev,test}.jsonl as 8-bit mu-law at its own
8 kHz (the Asterisk prompts are 8 kHz telephone speech), the transcripts, the Whisper base
hypotheses sbasr cached for them (for the hypothesis-conditioned rows), the tiny.en
encoder (the stand-in second encoder), the SmolLM2 GGUF file and cp312 wheels of the few
packages sbasr's training needs there; the last part holds the Whisper base encoder. Both
encoders are float16, as their CTranslate2 originals are.

On the GPU machine each part is carried by its own call and copied into one scratch
folder; after the tar's parts, `cat pack.tar.?? > pack.tar && tar -xf pack.tar`, the
wheels go in with `pip install --no-deps --target`, and `run --smoke` (tiny.en as the
encoder, a few utterances, 2 steps) checks the whole path in a couple of minutes before
the last part and the full run.

`run` rebuilds the 16 kHz audio (FFT interpolation, for want of PyAV's resampler), then
trains every Speech-LLM row of benchmarks/compare/run.py with that row's own flags
through `sbasr finetune`, all rows at once on the one GPU until --deadline, decodes the
test set with each model (greedy, batch 8) and times the Speech-LLM engine's batching,
batch 8 against batch 1, on the 120 test clips. Into OUT: results.json, log.txt and the
default row's trained model, in pieces.

`finish` scores each row's GPU transcripts with `sbasr score` into OUT/summary.json
(committed as benchmarks/compare/gpu_results.json), and decodes the default
(hypothesis-conditioned) row again here with the whole engine: its Whisper first pass and
the check of the LLM's corrections run on CTranslate2, which the GPU machine lacks (there
that row reads the cached hypotheses and skips the check).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PART_BYTES = 60 * 2**20 - 2 * 2**20  # a carried part, beside the working tree itself
SPLITS = ("train", "dev", "test")
DEVICE = os.environ.get("DEV", "cuda")  # DEV=cpu: a dry run here


# --- mu-law and 8 -> 16 kHz ------------------------------------------------------------


def mulaw_encode(x: np.ndarray) -> np.ndarray:
    y = np.sign(x) * np.log1p(255 * np.minimum(np.abs(x), 1.0)) / np.log(256)
    return np.round((y + 1) / 2 * 255).astype(np.uint8)


def mulaw_decode(q: np.ndarray) -> np.ndarray:
    y = q.astype(np.float32) / 255 * 2 - 1
    return (np.sign(y) * np.expm1(np.abs(y) * np.log(256)) / 255).astype(np.float32)


def upsample2(x: np.ndarray) -> np.ndarray:
    """8 to 16 kHz by zero-padding the spectrum: band-limited, as a resampler would be."""
    n = len(x)
    spec = np.fft.rfft(x)
    out = np.zeros(n + 1, dtype=spec.dtype)
    out[: len(spec)] = spec
    return (np.fft.irfft(out, 2 * n) * 2).astype(np.float32)


# --- here: pack ------------------------------------------------------------------------


def pack(data: Path, out: Path) -> None:
    import soundfile as sf
    from safetensors.torch import save_file
    from transformers import WhisperModel

    from sbasr.asr.hypotheses import HypothesisCache
    from sbasr.speechllm.llm import _smollm2_file
    from sbasr.training.data import load_example_audio, read_examples
    from sbasr.whisper.models import transformers_model

    full = out / "full"
    shutil.rmtree(out, ignore_errors=True)
    full.mkdir(parents=True)
    cache = HypothesisCache("base")
    rows, chunks, missing = [], [], 0
    for split in SPLITS:
        for ex in read_examples(data / f"{split}.jsonl"):
            wave, rate = sf.read(ex.audio, dtype="float32")
            if rate != 8000 or wave.ndim != 1:
                raise SystemExit(f"{ex.audio}: {rate} Hz, {wave.ndim} channels; want 8 kHz mono")
            hyp = cache.entries.get(cache.key(load_example_audio(ex), ex.language))
            missing += hyp is None
            rows.append(
                {"split": split, "id": ex.id, "text": ex.text, "language": ex.language}
                | ({"hypothesis": hyp} if hyp is not None else {})
                | {"samples": len(wave)}
            )
            chunks.append(mulaw_encode(wave))
    if missing:
        print(f"pack: {missing} utterances have no cached Whisper hypothesis", flush=True)
    np.save(full / "audio.npy", np.concatenate(chunks))
    (full / "rows.json").write_text(json.dumps(rows, ensure_ascii=False))
    for name in ("base", "tiny.en"):
        src = Path(transformers_model(name))
        enc = WhisperModel.from_pretrained(src).get_encoder()
        target = full / f"whisper-{name}"
        target.mkdir()
        state = {k: v.half().contiguous() for k, v in enc.state_dict().items()}
        save_file(state, target / "encoder.safetensors")
        for f in ("config.json", "preprocessor_config.json"):
            shutil.copy2(src / f, target / f)
    shutil.copy2(_smollm2_file(), full / "llm.gguf")
    wheels = Path(os.environ.get("WHEELS", "/work/gpu/whl"))
    (full / "whl").mkdir()
    for w in wheels.glob("*.whl"):
        shutil.copy2(w, full / "whl" / w.name)
    _split_parts(full, out)
    shutil.rmtree(full)
    for part in sorted(out.glob("part*")):
        size = sum(f.stat().st_size for f in part.rglob("*") if f.is_file())
        print(f"{part}: {size / 2**20:.1f} MiB", flush=True)


def _split_parts(full: Path, out: Path) -> None:
    """Everything but the Whisper base encoder as one tar cut into equal parts (part1 ...);
    that encoder (what only the full run needs) in the last part, so that the parts
    before it are enough for a smoke run with tiny.en."""
    with tarfile.open(full.parent / "pack.tar", "w") as tar:
        for f in sorted(p for p in full.iterdir() if p.name != "whisper-base"):
            tar.add(f, arcname=f.name)
    data = (full.parent / "pack.tar").read_bytes()
    (full.parent / "pack.tar").unlink()
    n = -(-len(data) // PART_BYTES)
    size = -(-len(data) // n)
    for k in range(n):
        (out / f"part{k + 1}").mkdir()
        (out / f"part{k + 1}" / f"pack.tar.{k:02d}").write_bytes(data[k * size : (k + 1) * size])
    shutil.copytree(full / "whisper-base", out / f"part{n + 1}" / "whisper-base")


def assemble(directory: Path) -> None:
    """Join and unpack pack.tar.00, .01 ... (on the GPU machine), once."""
    pieces = sorted(directory.glob("pack.tar.[0-9][0-9]"))
    if not pieces:
        return
    with (directory / "pack.tar").open("wb") as dst:
        for piece in pieces:
            dst.write(piece.read_bytes())
    with tarfile.open(directory / "pack.tar") as tar:
        tar.extractall(directory, filter="data")
    for f in [*pieces, directory / "pack.tar"]:
        f.unlink()


# --- there: run ------------------------------------------------------------------------


def patch_audio() -> None:
    """Audio files here are .npy arrays at 16 kHz (no PyAV on the GPU machine)."""
    import sbasr.training.data as data
    import sbasr.training.dataset as dataset
    import sbasr.training.speechllm as train

    def load(ex):
        return np.load(ex.audio)

    data._probe = lambda path: len(np.load(path, mmap_mode="r")) / 16000
    for module in (data, dataset, train):
        module.load_example_audio = load


def prepare(pack_dir: Path, work: Path, smoke: bool) -> dict:
    """Audio, manifests, Whisper directories, the converted LLM and the hypothesis cache
    under `work`; returns the paths the rows' flags need. `smoke`: a few utterances of
    each language and split, and tiny.en as the Whisper model (base is not there yet)."""
    import torch
    from safetensors.torch import load_file
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    assemble(pack_dir)
    rows = json.loads((pack_dir / "rows.json").read_text())
    mulaw = np.load(pack_dir / "audio.npy")
    audio_dir = work / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    manifests = {s: [] for s in SPLITS}
    offset = 0
    arrays = {}
    taken: dict[tuple[str, str], int] = {}
    for row in rows:
        wave = upsample2(mulaw_decode(mulaw[offset : offset + row["samples"]]))
        offset += row["samples"]
        group = (row["split"], row["language"])
        taken[group] = taken.get(group, 0) + 1
        if smoke and taken[group] > {"train": 4, "dev": 1, "test": 2}[row["split"]]:
            continue
        path = audio_dir / f"{row['id']}.npy"
        np.save(path, wave)
        arrays[row["id"]] = wave
        entry = {"id": row["id"], "audio": str(path), "text": row["text"]}
        entry["language"] = row["language"]
        if row["split"] == "test":
            entry |= {"start": 0.0, "end": round(len(wave) / 16000, 3)}
        manifests[row["split"]].append(entry)
    for split, entries in manifests.items():
        text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        (work / f"{split}.jsonl").write_text(text)
    whisper = {}
    for name in ("tiny.en",) if smoke else ("base", "tiny.en"):
        src = pack_dir / f"whisper-{name}"
        model = WhisperModel(WhisperConfig.from_pretrained(src))
        model.get_encoder().load_state_dict(
            {k: v.float() for k, v in load_file(src / "encoder.safetensors").items()}
        )
        whisper[name] = work / f"whisper-{name}"
        model.save_pretrained(whisper[name])
        WhisperFeatureExtractor.from_pretrained(src).save_pretrained(whisper[name])
    from sbasr.asr.hypotheses import HypothesisCache
    from sbasr.speechllm.llm import llm_path

    llm = llm_path(str(pack_dir / "llm.gguf"))  # converted once, before the rows start
    cache = HypothesisCache("base")
    for row in rows:
        if "hypothesis" in row and row["id"] in arrays:
            cache.entries[cache.key(arrays[row["id"]], row["language"])] = row["hypothesis"]
    cache.save()
    print(f"prepared: {len(rows)} utterances, cuda {torch.cuda.is_available()}", flush=True)
    return {
        "whisper": str(whisper["tiny.en" if smoke else "base"]),
        "encoder2": str(whisper["tiny.en"]),
        "llm": llm,
        "hyps": {r["id"]: r.get("hypothesis", "") for r in rows},
    }


def speechllm_rows(paths: dict, precision: str):
    """The Speech-LLM rows of the comparison, with their stages' own flags."""
    sys.path.insert(0, str(HERE / "compare"))
    import run as compare

    args = argparse.Namespace(
        whisper=paths["whisper"],
        llm=paths["llm"],
        encoder2=paths["encoder2"],
        precision=precision,
    )
    sizes = compare.FULL
    if os.environ.get("STEPS"):  # a dry run: STEPS=stage1,stage2,eval
        s1, s2, ev = (int(x) for x in os.environ["STEPS"].split(","))
        sizes = compare.Sizes(0, 0, 0, 0, s1, s2, ev)
    out = []
    for system in compare.systems(args, sizes):
        if system.family != "Speech-LLM":
            continue
        stages = compare.stage_steps(system.finetune, sizes)
        if "--hypothesis" in system.finetune:  # the hypotheses cached under this name
            stages = [[*s, "--hypothesis-model", "base"] for s in stages]
        out.append((system.name, compare._slug(system.name), stages))
    return out


def train_one(work: Path, name: str, precision: str) -> None:
    """One row in its own process: both stages through the CLI, then the test set."""
    patch_audio()
    paths = json.loads((work / "paths.json").read_text())
    from sbasr.cli import main as cli

    row = next(r for r in speechllm_rows(paths, precision) if r[0] == name)
    _, slug, stages = row
    out = work / slug
    record = {"system": name, "stages": []}
    t0 = time.perf_counter()
    for step in stages:
        started = time.perf_counter()
        argv = [
            "finetune",
            "--train",
            str(work / "train.jsonl"),
            "--dev",
            str(work / "dev.jsonl"),
            "-o",
            str(out),
            *step,
            "--encoder-cache-dir",
            str(work / f"enc-{slug}"),
        ]
        sys.argv = ["sbasr", *argv]
        try:
            cli()
        except SystemExit as e:
            if e.code not in (0, None):
                raise
        record["stages"].append({"wall": time.perf_counter() - started})
    record["train_wall"] = time.perf_counter() - t0
    history = []
    for state in sorted(out.glob("stage*/trainer_state.json")):
        history.append(json.loads(state.read_text())["log_history"])
    record["train_runtime"] = sum(h.get("train_runtime", 0.0) for hs in history for h in hs)
    record["dev"] = [
        {k: h[k] for k in h if k in ("step", "eval_loss", "eval_wer")}
        for hs in history
        for h in hs
        if "eval_loss" in h or "eval_wer" in h
    ]
    t1 = time.perf_counter()
    try:
        record["hyps"] = decode_test(work, out, paths["hyps"])
    except Exception as e:  # keep the training figures
        record["decode_error"] = repr(e)
    record["decode_wall"] = time.perf_counter() - t1
    (work / f"record-{slug}.json").write_text(json.dumps(record, ensure_ascii=False))


def decode_test(work: Path, model_dir: Path, hyps: dict[str, str]) -> dict[str, str]:
    """Greedy, batch 8, through the engine; a hypothesis-conditioned model reads the cached
    Whisper hypotheses (no check: that needs CTranslate2)."""
    from dataclasses import replace

    from sbasr.asr.engines.speechllm import SpeechLLMEngine
    from sbasr.asr.options import EngineSettings, SpeechLLMDecodeOptions

    engine = SpeechLLMEngine(str(model_dir), EngineSettings(device=DEVICE))
    rows = [json.loads(line) for line in (work / "test.jsonl").open()]
    out = {}
    for lang in sorted({r["language"] for r in rows}):
        part = [r for r in rows if r["language"] == lang]
        clips = [np.load(r["audio"]) for r in part]
        options = SpeechLLMDecodeOptions(language=lang, beam_size=1, batch_size=8)
        order = sorted(range(len(clips)), key=lambda i: len(clips[i]))
        given = None
        if engine.model.spec.hypothesis:
            given = {i: hyps[r["id"]] for i, r in enumerate(part)}
            options = replace(options, check_corrections=False)
        texts = engine._read(clips, order, options, given)
        out |= {r["id"]: t for r, t in zip(part, texts)}
    return out


def batching(work: Path, model_dir: Path) -> dict:
    """The engine over the 120 test clips, batch 8 against batch 1 (issue 13)."""
    import torch

    from sbasr.asr.engines.speechllm import SpeechLLMEngine
    from sbasr.asr.options import EngineSettings, SpeechLLMDecodeOptions

    engine = SpeechLLMEngine(str(model_dir), EngineSettings(device=DEVICE))
    rows = [json.loads(line) for line in (work / "test.jsonl").open()]
    by_lang = {}
    for r in rows:
        by_lang.setdefault(r["language"], []).append(np.load(r["audio"]))
    result = {}
    texts = {}
    sync = torch.cuda.synchronize if DEVICE == "cuda" else (lambda: None)
    for size in (8, 1, 8, 1):  # the first two are warm-up
        sync()
        t0 = time.perf_counter()
        out = []
        for lang, clips in by_lang.items():
            options = SpeechLLMDecodeOptions(language=lang, beam_size=1, batch_size=size)
            out += [" ".join(d.text for d in ds) for ds in engine.decode_clips(clips, options)]
        sync()
        result[f"batch{size}"] = time.perf_counter() - t0
        texts[size] = out
    result["ratio"] = result["batch1"] / result["batch8"]
    result["same_texts"] = sum(a == b for a, b in zip(texts[1], texts[8]))
    result["clips"] = len(rows)
    result["audio_seconds"] = sum(len(c) for cs in by_lang.values() for c in cs) / 16000
    return result


def run(
    pack_dir: Path, out: Path, only: list[str] | None, deadline: float, jobs: int, smoke: bool
) -> None:
    import torch

    start = time.perf_counter()
    work = Path(os.environ.get("WORK", "/tmp/sbasr-smoke" if smoke else "/tmp/sbasr-gpu"))
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    # models, the converted LLM and hypotheses: shared by a smoke run and the full one
    os.environ.setdefault("SBASR_CACHE", "/tmp/sbasr-cache")
    precision = "bf16"
    if smoke:
        os.environ.setdefault("STEPS", "2,2,2")
    paths = prepare(pack_dir, work, smoke)
    (work / "paths.json").write_text(json.dumps(paths))
    results = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "prepare_seconds": time.perf_counter() - start,
        "systems": {},
    }
    rows = [r for r in speechllm_rows(paths, precision) if not only or r[0] in only]
    log = (out / "log.txt").open("a")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    waiting, running = list(rows), {}
    while waiting or running:
        while waiting and len(running) < jobs:
            name, slug, _ = waiting.pop(0)
            cmd = [sys.executable, __file__, "one", str(work), name, precision]
            running[name] = (subprocess.Popen(cmd, stdout=log, stderr=log, env=env), slug)
            print(f"started {name}", flush=True)
        time.sleep(2)
        for name, (proc, slug) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            record = work / f"record-{slug}.json"
            ok = proc.returncode == 0 and record.is_file()
            entry = json.loads(record.read_text()) if ok else {"error": proc.returncode}
            results["systems"][name] = entry
            print(f"finished {name}: rc {proc.returncode}", flush=True)
            _save(results, out)
        if time.perf_counter() - start > deadline:
            for name, (proc, _) in running.items():
                proc.kill()
                results["systems"][name] = {"error": "deadline"}
                print(f"deadline: stopped {name}", flush=True)
            waiting.clear()
            running.clear()
    _save(results, out)
    # the engine's batching, on the first pure Speech-LLM trained (the paper recipe's)
    for name, slug, stages in rows:
        if "--hypothesis" not in stages[0] and (work / slug / "sbasr-speechllm.json").is_file():
            try:
                results["batching"] = {"system": name} | batching(work, work / slug)
            except Exception as e:
                results["batching"] = {"error": repr(e)}
            print("batching:", results["batching"], flush=True)
            break
    _save(results, out)
    try:
        _save_models(work, rows, out)
    except Exception as e:
        results["save_error"] = repr(e)
    results["total_seconds"] = time.perf_counter() - start
    _save(results, out)
    log.close()
    _trim_log(out / "log.txt")


def _save(results: dict, out: Path) -> None:
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    tmp.replace(out / "results.json")


# The row whose model comes back to be decoded here with the whole engine: what comes
# back is at most 8 files of 16 MiB and 64 MiB in all, and one hypothesis-conditioned
# model (projector and LLM LoRA in float32) is about 36 MB; the other rows are scored
# from their GPU transcripts alone.
BRING_BACK = "Speech-LLM + Whisper hypothesis (GER variant)"


def _save_models(work: Path, rows, out: Path) -> None:
    """BRING_BACK's model (its weights and adapters, not the stages' checkpoints) as a
    tar cut into pieces of 15 MiB: model-SLUG.tar.00, .01 ..."""
    for name, slug, _ in rows:
        model = work / slug
        if name != BRING_BACK or not (model / "sbasr-speechllm.json").is_file():
            continue
        whole = work / f"model-{slug}.tar"
        with tarfile.open(whole, "w") as tar:
            for f in sorted(model.iterdir()):
                if not f.name.startswith("stage"):
                    tar.add(f, arcname=f"{slug}/{f.name}")
        data = whole.read_bytes()
        piece = 15 * 2**20
        for k in range(0, len(data), piece):
            (out / f"model-{slug}.tar.{k // piece:02d}").write_bytes(data[k : k + piece])


def _trim_log(path: Path, keep: int = 3 * 2**20) -> None:
    """Progress bars make long logs: keep the end."""
    data = path.read_bytes()
    if len(data) > keep:
        path.write_bytes(data[-keep:])


# --- here again: finish ------------------------------------------------------------------


def finish(pack_dir: Path, results_dir: Path, data: Path, work: Path) -> None:
    """Score the GPU transcripts here; decode the hypothesis-conditioned rows again with
    the whole engine (first pass and check on CTranslate2)."""
    results = json.loads((results_dir / "results.json").read_text())
    work.mkdir(parents=True, exist_ok=True)
    for first in sorted(results_dir.glob("model-*.tar.00")):
        whole = work / first.name[: -len(".00")]
        whole.write_bytes(
            b"".join(p.read_bytes() for p in sorted(first.parent.glob(whole.name + ".*")))
        )
        with tarfile.open(whole) as t:
            t.extractall(work / "models", filter="data")
    table = {}
    for name, entry in results["systems"].items():
        if "hyps" not in entry:
            table[name] = {"error": entry.get("error")}
            continue
        slug = _slug(name)
        hyp = work / f"gpu-{slug}.txt"
        lines = (f"{k} {' '.join(v.split())}\n" for k, v in sorted(entry["hyps"].items()))
        hyp.write_text("".join(lines))
        row = {"gpu": _score(hyp, data), "train_runtime": entry.get("train_runtime")}
        model = work / "models" / slug
        config = model / "sbasr-speechllm.json"
        if config.is_file():
            spec = json.loads(config.read_text())
            # the GPU machine's paths: the same models by their names here
            for key in ("encoder", "encoder2"):
                if spec.get(key):  # .../whisper-base -> base
                    spec[key] = Path(spec[key]).name.removeprefix("whisper-")
            spec["llm"] = "smollm2"
            config.write_text(json.dumps(spec, indent=1))
            if spec.get("hypothesis"):
                out = work / f"cpu-{slug}"
                cmd = [sys.executable, "-m", "sbasr", "transcribe", str(data / "test.jsonl")]
                cmd += ["--engine", "speechllm", "--model", str(model), "--beam-size", "1"]
                cmd += ["-f", "keyed", "-o", str(out)]
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode:
                    raise SystemExit(run.stderr[-2000:])
                hyp = work / f"cpu-{slug}.txt"
                hyp.write_text("".join(p.read_text() for p in sorted(out.glob("*.keyed"))))
                row["engine_with_check"] = _score(hyp, data)
        table[name] = row
        print(name, json.dumps(row), flush=True)
    summary = {
        "device": results["device"],
        "torch": results["torch"],
        "systems": {
            name: row
            | {
                k: v
                for k, v in results["systems"][name].items()
                if k in ("train_wall", "decode_wall", "dev")
            }
            for name, row in table.items()
        },
        "batching": results.get("batching"),
    }
    text = json.dumps(summary, indent=1, ensure_ascii=False) + "\n"
    (results_dir / "summary.json").write_text(text)


def _score(hyp: Path, data: Path) -> dict:
    run = subprocess.run(
        [sys.executable, "-m", "sbasr", "score", str(hyp), str(data / "test.jsonl"), "--json"],
        capture_output=True,
        text=True,
    )
    if run.returncode:
        raise SystemExit(run.stderr[-2000:])
    report = json.loads(run.stdout)
    return {"pooled": report["pooled"]["rate"]} | {
        r["language"]: r["rate"] for r in report["languages"]
    }


def _slug(name: str) -> str:
    sys.path.insert(0, str(HERE / "compare"))
    import run as compare

    return compare._slug(name)


def main() -> None:
    sys.path.insert(0, str(HERE.parent / "src"))
    cmd, *rest = sys.argv[1:]
    if cmd == "pack":
        pack(Path(rest[0]), Path(rest[1]))
    elif cmd == "run":
        parser = argparse.ArgumentParser()
        parser.add_argument("pack", type=Path)
        parser.add_argument("out", type=Path)
        parser.add_argument("--only", nargs="*")
        parser.add_argument("--deadline", type=float, default=420.0)
        parser.add_argument("--jobs", type=int, default=8)
        parser.add_argument("--smoke", action="store_true", help="a few steps, with tiny.en")
        a = parser.parse_args(rest)
        run(a.pack, a.out, a.only, a.deadline, a.jobs, a.smoke)
    elif cmd == "one":
        train_one(Path(rest[0]), rest[1], rest[2])
    elif cmd == "finish":
        finish(Path(rest[0]), Path(rest[1]), Path(rest[2]), Path(rest[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
