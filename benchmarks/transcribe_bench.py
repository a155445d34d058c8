"""Whisper engine benchmarks, as ratios measured in one run on the same model and settings.

1. sbasr's Whisper engine vs plain faster-whisper (its own VAD) on the same multi-minute
   recording: the wall time ratio (1.0: the wrapper costs nothing).
2. Batched vs sequential decoding of the same >= 3-minute conversation.
3. Peak resident memory of `sbasr transcribe` with base, int8, on CPU.
4. Word error rates on the real Asterisk telephone prompts, per language.

Real speech comes from Debian's asterisk-core-sounds-{en,es,fr,ru}[-wav] packages, unpacked
without installing (benchmarks/asterisk.py):

    apt-get download asterisk-core-sounds-en-wav asterisk-core-sounds-en ...
    for f in *.deb; do dpkg-deb -x $f root; done
    python benchmarks/transcribe_bench.py --sounds root

The comparison with transformers `generate` runs the same model converted to transformers
format (sbasr's CTranslate2 -> transformers converter).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from asterisk import VOICES, prompts

SR = 16_000


def conversation(
    items: list[tuple[str, Path, str]], seconds: float, path: Path
) -> tuple[float, str]:
    """Prompts one after another with 0.3-1.5 s pauses, like turns in a call; returns the
    duration and the reference transcript."""
    rng = random.Random(0)
    import av  # noqa: F401 - PyAV decodes through sbasr

    from sbasr.io.audio import load_audio

    parts, total, texts = [], 0.0, []
    for _, wav, text in items:
        texts.append(text)
        audio = load_audio(wav).channels[0]
        gap = np.zeros(int(SR * rng.uniform(0.3, 1.5)), dtype=np.float32)
        parts += [audio, gap]
        total += (len(audio) + len(gap)) / SR
        if total >= seconds:
            break
    sf.write(path, np.concatenate(parts), SR)
    return total, " ".join(texts)


def best(repeat: int, func) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def transformers_time(engine, call: Path, model: str, work: Path):
    """(transformers seconds, sbasr seconds, spans) for decoding the same VAD spans one by
    one with beam 5: the model converted to transformers format by sbasr's converter."""
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from sbasr.asr.options import WhisperDecodeOptions
    from sbasr.asr.segments import vad_spans
    from sbasr.io.audio import load_audio
    from sbasr.whisper.ct2 import ct2_to_transformers
    from sbasr.whisper.models import resolve_model

    hf_dir = ct2_to_transformers(resolve_model(model), work / "hf")
    proc = WhisperProcessor.from_pretrained(hf_dir)
    hf = WhisperForConditionalGeneration.from_pretrained(hf_dir).eval()
    audio = load_audio(call).channels[0]
    spans = vad_spans(audio)
    cuts = [audio[int(s.start * SR) : int(s.end * SR)] for s in spans]

    def run_hf() -> None:
        with torch.inference_mode():
            for cut in cuts:
                feats = proc.feature_extractor(cut, sampling_rate=SR, return_tensors="pt")
                hf.generate(feats.input_features, language="en", task="transcribe", num_beams=5)

    def run_ours() -> None:
        # the same work as transformers does: no prompt from the previous span, no fallback,
        # no timestamp tokens
        same = WhisperDecodeOptions(
            language="en",
            beam_size=5,
            condition_on_previous_text=False,
            temperature_increment=0.0,
            timestamps=False,
        )
        list(engine.decode(audio, spans, same))

    # ours first: torch's idle OpenMP threads spin for a while after a run and would slow
    # anything measured right after it
    t_ours = best(1, run_ours)
    return best(1, run_hf), t_ours, len(spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sounds",
        type=Path,
        default=Path("/"),
        help="the root the asterisk .deb files were unpacked into",
    )
    parser.add_argument("--model", default="base")
    parser.add_argument("--seconds", type=float, default=200.0)
    parser.add_argument("--per-language", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--parts",
        default="overhead,batched,transformers,memory,wer",
        help="which measurements to run, comma-separated",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    from faster_whisper import WhisperModel

    import sbasr
    from sbasr.asr.engines.whisper import WhisperEngine
    from sbasr.asr.options import EngineSettings
    from sbasr.whisper.models import resolve_model

    items = prompts(args.sounds, "en")
    if not items:
        sys.exit(f"no asterisk prompts under {args.sounds}; see this script's docstring")
    work = Path(tempfile.mkdtemp(prefix="sbasr-bench-"))
    call = work / "call.wav"
    duration, reference = conversation(items, args.seconds, call)
    compute = "int8" if args.device == "cpu" else "float16"
    print(
        f"recording: {duration:.0f} s of real telephone speech; model {args.model}, "
        f"{compute}, {args.device}, beam 5"
    )

    # 1. wrapper overhead: the same model object under both, loading excluded
    engine = WhisperEngine(args.model, EngineSettings(device=args.device, compute_type=compute))
    plain: WhisperModel = engine.model
    opts = sbasr.TranscribeOptions()
    opts.decode.language = "en"

    texts: dict[str, str] = {}

    def run_plain() -> None:
        segments, _ = plain.transcribe(str(call), language="en", beam_size=5, vad_filter=True)
        texts["plain"] = " ".join(s.text for s in segments)

    def run_sbasr() -> None:
        texts["sbasr"] = " ".join(
            s.text for s in sbasr.transcribe(call, engine=engine, options=opts)
        )

    def wer(name: str) -> str:
        rate = sbasr.score({"c": texts[name]}, {"c": reference}, language="en").pooled.rate
        return f"WER {100 * rate:.1f}%"

    if parts & {"overhead", "batched"}:
        t_plain, t_sbasr = best(args.repeat, run_plain), best(args.repeat, run_sbasr)
        print(
            f"faster-whisper (own VAD)   {t_plain:7.1f} s   RTF {t_plain / duration:.3f}   "
            f"{wer('plain')}"
        )
        print(
            f"sbasr Whisper engine       {t_sbasr:7.1f} s   RTF {t_sbasr / duration:.3f}   "
            f"{wer('sbasr')}   ratio {t_sbasr / t_plain:.2f}"
        )

    # 2. batched vs sequential on the same conversation
    if "batched" in parts:
        opts.decode.batch_size = args.batch_size
        t_batched = best(args.repeat, run_sbasr)
        print(
            f"batched (batch {args.batch_size})         {t_batched:7.1f} s   "
            f"{t_sbasr / t_batched:.2f}x faster than sequential"
        )
        opts.decode.batch_size = 1

    # 2b. transformers generate on the same spans, model and beam
    if "transformers" in parts:
        t_hf = transformers_time(engine, call, args.model, work)
        spans_time = t_hf[1]
        print(
            f"transformers generate      {t_hf[0]:7.1f} s   on the same {t_hf[2]} VAD spans, "
            f"beam 5, float32; sbasr (int8, same settings) decodes them in {spans_time:.1f} s: "
            f"{t_hf[0] / spans_time:.1f}x faster"
        )

    # 3. peak memory of the CLI as a user runs it
    if "memory" in parts:
        # VmHWM, not ru_maxrss: the latter keeps this (large) parent's peak across fork and exec.
        probe = (
            "import sys\nfrom sbasr.cli import main\nsys.argv = ['sbasr'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print(hwm.split()[1], file=sys.stderr)\n"
        )

        def peak_mb(path: Path) -> float:
            cmd = [
                sys.executable,
                "-c",
                probe,
                "transcribe",
                str(path),
                "-m",
                args.model,
                "--compute-type",
                compute,
                "--device",
                args.device,
                "-l",
                "en",
                "-o",
                str(work / "out"),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            return int(out.stderr.strip().splitlines()[-1]) / 1024

        print(f"peak resident memory of sbasr transcribe: {peak_mb(call):,.0f} MB")
        # An hour: the conversation, near-silent line noise, the conversation again.
        speech, _ = sf.read(call, dtype="float32")
        quiet = np.random.default_rng(0).normal(0, 1e-3, int(SR * (3600 - 2 * duration)))
        hour = work / "hour.wav"
        sf.write(hour, np.concatenate([speech, quiet.astype(np.float32), speech]), SR)
        print(f"  on a one-hour recording: {peak_mb(hour):,.0f} MB")
        hour.unlink()

    # 4. error rates per language on held prompts (every prompt its own utterance)
    if "wer" in parts:
        print(f"word error rates, {args.per_language} prompts per language, mlcslm normalisation:")
        engine_ml = engine if plain.model.is_multilingual else None
        for lang in VOICES:
            rows = prompts(args.sounds, lang)
            if not rows or (lang != "en" and engine_ml is None):
                print(f"  {lang}: skipped")
                continue
            rows = random.Random(1).sample(rows, min(args.per_language, len(rows)))
            manifest = work / f"{lang}.jsonl"
            manifest.write_text(
                "".join(
                    json.dumps({"id": k, "audio": str(w), "language": lang}) + "\n"
                    for k, w, _ in rows
                )
            )
            o = sbasr.TranscribeOptions()
            o.decode.language = lang
            hyp = {}
            for seg in sbasr.transcribe(manifest, engine=engine, options=o):
                hyp[seg.recording] = f"{hyp.get(seg.recording, '')} {seg.text}".strip()
            report = sbasr.score(hyp, {k: t for k, _, t in rows}, language=lang)
            print(
                f"  {lang}: WER {100 * report.pooled.rate:5.1f}%  ({report.pooled.utterances} "
                f"prompts, {report.pooled.ref_tokens} words)"
            )
    print(f"model path: {resolve_model(args.model)}; cpu threads: {os.cpu_count()}")


if __name__ == "__main__":
    main()
