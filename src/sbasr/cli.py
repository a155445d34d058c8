"""The `sbasr` command line: parses arguments and hands over to the library.

Heavy modules (torch, transformers, numpy) are imported inside the commands, so that
`sbasr --help` and `sbasr score` start in a fraction of a second.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .errors import SbasrError
from .normalize import NORMALIZERS
from .units import UNITS

app = typer.Typer(
    name="sbasr",
    help="Multilingual conversational speech recognition: Whisper and Speech-LLM side by side.",
    no_args_is_help=True,
    add_completion=False,  # static scripts ship in completions/ instead
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


Normalizer = Enum("Normalizer", {n: n for n in NORMALIZERS}, type=str)


Unit = Enum("Unit", {u: u for u in UNITS}, type=str)


def _fail(error: SbasrError) -> typer.Exit:
    typer.echo(f"sbasr: error: {error}", err=True)
    return typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sbasr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Multilingual conversational speech recognition: Whisper and Speech-LLM side by side."""


@app.command()
def score(
    hyp: Annotated[Path, typer.Argument(help="Hypotheses: keyed text or JSON Lines.")],
    ref: Annotated[Path, typer.Argument(help="References: keyed text or JSON Lines.")],
    language: Annotated[
        str | None, typer.Option("--language", "-l", help="Language of every utterance.")
    ] = None,
    language_from_key: Annotated[
        bool,
        typer.Option(help="Take the language from the key prefix (English-American-..., ja-...)."),
    ] = False,
    normalize: Annotated[
        Normalizer, typer.Option(help="Text normalisation; mlcslm is the challenge's rule.")
    ] = Normalizer["mlcslm"],
    unit: Annotated[
        Unit | None,
        typer.Option(
            help="Count words or characters for all (default: chars for ja ko th zh "
            "yue, words otherwise)."
        ),
    ] = None,
    by_line: Annotated[
        bool, typer.Option(help="Plain text, one utterance per line, matched by line number.")
    ] = False,
    strict: Annotated[
        bool, typer.Option(help="Fail if an id is in one file but not the other.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    alignments: Annotated[
        Path | None,
        typer.Option(help="Write every utterance aligned (REF/HYP/S-D-I), worst first."),
    ] = None,
    jobs: Annotated[
        int, typer.Option(help="Processes for large sets; 0 = one per CPU core.", min=0)
    ] = 0,
) -> None:
    """Score hypotheses against references: per-language and pooled CER/WER."""
    from .scoring import score as run_score

    try:
        report = run_score(
            hyp,
            ref,
            language=language,
            language_from_key=language_from_key,
            normalize=normalize.value,
            unit=unit.value if unit else None,
            by_line=by_line,
            strict=strict,
            jobs=jobs or min(os.cpu_count() or 1, 8),
        )
        if alignments is not None:
            from .report import write_alignments

            write_alignments(report, alignments)
    except SbasrError as e:
        raise _fail(e) from None
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return
    from rich.console import Console

    from .report import render_table

    render_table(report, Console())


class Channels(str, Enum):
    mix = "mix"
    split = "split"


class Engine(str, Enum):
    whisper = "whisper"
    speechllm = "speechllm"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class OutputFormat(str, Enum):
    txt = "txt"
    srt = "srt"
    vtt = "vtt"
    json = "json"
    tsv = "tsv"
    keyed = "keyed"
    all = "all"


@app.command()
def transcribe(
    files: Annotated[
        list[Path], typer.Argument(help="Audio files, directories, or JSON Lines manifests.")
    ],
    engine: Annotated[Engine, typer.Option(help="Recogniser family.")] = Engine.whisper,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="whisper: base, tiny.en, a model directory or hub id; speechllm: a trained "
            "model directory.",
        ),
    ] = None,
    language: Annotated[
        str | None, typer.Option("--language", "-l", help="Force a language (else detected).")
    ] = None,
    language_per_segment: Annotated[
        bool, typer.Option(help="Detect the language of each segment (code-switching).")
    ] = False,
    channels: Annotated[
        Channels, typer.Option(help="split: each channel is its own speaker.")
    ] = Channels.mix,
    segments: Annotated[
        bool, typer.Option("--segments", help="Use the MLC-SLM <audio>.txt oracle segments.")
    ] = False,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.txt,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: beside each input.")
    ] = None,
    skip_existing: Annotated[
        bool, typer.Option(help="Skip recordings whose outputs exist (resume a batch).")
    ] = False,
    beam_size: Annotated[
        int | None, typer.Option(min=1, help="Beam width (default: whisper 5, speechllm 1).")
    ] = None,
    temperature: Annotated[float, typer.Option(min=0.0, help="First temperature.")] = 0.0,
    temperature_increment: Annotated[
        float, typer.Option(min=0.0, help="Fallback step on failed decodes; 0 = no fallback.")
    ] = 0.2,
    initial_prompt: Annotated[str | None, typer.Option(help="Text to prime the decoder.")] = None,
    hotwords: Annotated[str | None, typer.Option(help="Words to favour.")] = None,
    condition_on_previous_text: Annotated[
        bool, typer.Option(help="Prompt each window with the text before it.")
    ] = True,
    word_timestamps: Annotated[bool, typer.Option(help="Time every word.")] = False,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.auto,
    compute_type: Annotated[
        str, typer.Option(help="CTranslate2 compute type: auto, int8, float16, float32 ...")
    ] = "auto",
    threads: Annotated[int, typer.Option(min=0, help="CPU threads; 0 = all cores.")] = 0,
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, help="Segments decoded together (default: whisper 1, speechllm 8)."),
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(min=1, help="Longest text per segment, in tokens.")
    ] = None,
) -> None:
    """Transcribe recordings into timed, speaker-attributed transcripts."""
    from rich.console import Console

    from .batch import run_batch
    from .engines import DecodeOptions, load_engine
    from .inputs import MANIFEST_SUFFIXES, expand_inputs
    from .pipeline import TranscribeOptions
    from .writers import writers_for

    err = Console(stderr=True)
    recordings, problems = expand_inputs(files, oracle_segments=segments)
    for _, message in problems:
        err.print(f"[red]sbasr: error:[/] {message}", soft_wrap=True, highlight=False)
    if not recordings:
        raise typer.Exit(2)
    temperatures = [temperature]
    while temperature_increment > 0 and temperatures[-1] + temperature_increment <= 1.0 + 1e-9:
        temperatures.append(round(temperatures[-1] + temperature_increment, 6))
    options = TranscribeOptions(
        channels=channels.value,
        language_per_segment=language_per_segment,
        decode=DecodeOptions(
            language=language,
            beam_size=beam_size,
            temperature=tuple(temperatures),
            initial_prompt=initial_prompt,
            hotwords=hotwords,
            condition_on_previous_text=condition_on_previous_text,
            word_timestamps=word_timestamps,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
        ),
    )
    try:
        asr = load_engine(engine.value, model, device=device.value, compute_type=compute_type,
                          threads=threads)  # fmt: skip
    except SbasrError as e:
        raise _fail(e) from None
    # One audio file in txt and nowhere to put it: the transcript goes to stdout.
    to_stdout = (
        output_dir is None and output_format == OutputFormat.txt and len(recordings) == 1
        and len(files) == 1 and files[0].is_file()
        and files[0].suffix.lower() not in MANIFEST_SUFFIXES
    )  # fmt: skip
    result = run_batch(recordings, asr, options, writers_for(output_format.value), output_dir,
                       to_stdout=to_stdout, skip_existing=skip_existing, console=err)  # fmt: skip
    failures = problems + result.failures
    rtf = f"{result.rtf:.3f}" if result.rtf is not None else "n/a"
    err.print(
        f"{result.done} transcribed, {result.skipped} skipped, {len(failures)} failed; "
        f"audio {result.audio_seconds:,.1f} s in {result.wall_seconds:,.1f} s "
        f"(real-time factor {rtf})",
        highlight=False,
        soft_wrap=True,
    )
    if failures:
        err.print("failed:", highlight=False)
        for _, message in failures:
            err.print(f"  {message}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the models available here: where each comes from, its path and size."""
    from .models import list_models

    try:
        found = list_models()
    except SbasrError as e:
        raise _fail(e) from None
    if as_json:
        sys.stdout.write(json.dumps([m.to_dict() for m in found], indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sbasr models", title_justify="left")
    for header in ("name", "languages", "size", "source", "path"):
        table.add_column(header, overflow="fold")
    for m in found:
        size = f"{m.size / 1e6:,.0f} MB" if m.size else "-"
        table.add_row(m.name, m.languages, size, m.source, m.path or "-")
    Console().print(table)


class Arch(str, Enum):
    whisper = "whisper"
    speechllm = "speechllm"


class Method(str, Enum):
    lora = "lora"
    full = "full"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


class TrainEncoder(str, Enum):
    frozen = "frozen"
    lora = "lora"
    full = "full"


# fusion.FUSIONS and projectors.PROJECTORS, not imported (they need torch): a test keeps
# them equal.
FusionKind = Enum("FusionKind", {f: f for f in ("concat", "uni-cross", "bi-cross", "gated-bi-cross",
                                              "gated-bi-cross-concat")}, type=str)  # fmt: skip
Projector = Enum("Projector", {p: p for p in ("conv", "linear", "qformer")}, type=str)


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(t for t in text.split(",") if t) if text is not None else None


@app.command()
def finetune(
    train: Annotated[
        Path, typer.Option(help="Manifest (.jsonl), MLC-SLM directory or Kaldi data dir.")
    ],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where it all goes.")],
    arch: Annotated[Arch, typer.Option(help="What to train.")] = Arch.whisper,
    dev: Annotated[Path | None, typer.Option(help="Dev data, same formats.")] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Whisper (speechllm: its encoder): base, tiny.en, "
            "a transformers directory or a hub id.",
        ),
    ] = "base",
    method: Annotated[Method, typer.Option(help="whisper: LoRA or all weights.")] = Method.lora,
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-4,
    warmup_steps: Annotated[int, typer.Option(min=0)] = 100,
    lr_scheduler: Annotated[
        str | None,
        typer.Option(
            help="transformers scheduler (default: whisper linear, speechllm inverse_sqrt)."
        ),
    ] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 3.0,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps (> epochs).")] = -1,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1, help="Utterances per device batch (whisper 8; speechllm: at most, default 64)."
        ),
    ] = None,
    grad_accum: Annotated[int, typer.Option(min=1, help="Gradient accumulation.")] = 1,
    eval_steps: Annotated[int, typer.Option(min=1, help="Score the dev set every N.")] = 200,
    save_steps: Annotated[
        int | None, typer.Option(help="Checkpoint every N (default: eval steps).")
    ] = None,
    logging_steps: Annotated[int, typer.Option(min=1)] = 10,
    seed: Annotated[int, typer.Option()] = 0,
    precision: Annotated[
        Precision, typer.Option(help="auto: what the device has.")
    ] = Precision.auto,
    gradient_checkpointing: Annotated[bool, typer.Option(help="Trade compute for memory.")] = False,
    speed_perturb: Annotated[
        str, typer.Option(help="Speed factors to draw from, e.g. 0.9,1.0,1.1.")
    ] = "",
    spec_augment: Annotated[bool, typer.Option(help="whisper: SpecAugment masking.")] = False,
    freeze_encoder: Annotated[bool, typer.Option(help="whisper: train the decoder only.")] = False,
    lora_r: Annotated[
        int | None, typer.Option(min=1, help="LoRA rank (whisper 32, speechllm 16).")
    ] = None,
    lora_alpha: Annotated[
        int | None, typer.Option(min=1, help="LoRA alpha (whisper 64, speechllm 32).")
    ] = None,
    lora_dropout: Annotated[
        float | None, typer.Option(min=0.0, help="LoRA dropout (whisper 0.05, speechllm 0.1).")
    ] = None,
    lora_targets: Annotated[
        str | None,
        typer.Option(
            help="Modules LoRA adapts (whisper q_proj,v_proj; speechllm "
            "q,k,v,o,gate,up,down _proj)."
        ),
    ] = None,
    encoder2: Annotated[
        str | None,
        typer.Option(
            help="speechllm: a second encoder in parallel (HuBERT-style or Whisper; "
            "directory or hub id, e.g. utter-project/mHuBERT-147)."
        ),
    ] = None,
    fusion: Annotated[
        FusionKind, typer.Option(help="speechllm: how the two encoders are fused.")
    ] = FusionKind.concat,  # type: ignore[attr-defined]
    projector: Annotated[
        Projector, typer.Option(help="speechllm: encoder frames to LLM embeddings.")
    ] = Projector.conv,  # type: ignore[attr-defined]
    llm: Annotated[
        str, typer.Option(help="speechllm: smollm2 (offline), a directory, .gguf or hub id.")
    ] = "smollm2",
    prompt: Annotated[
        str | None, typer.Option(help="speechllm: the prompt, with {language} in it.")
    ] = None,
    stages: Annotated[
        str, typer.Option("--stages", "--stage", help="speechllm: 1, 2 or 1,2.")
    ] = "1,2",
    init: Annotated[
        Path | None, typer.Option(help="speechllm: the stage-1 model stage 2 starts from.")
    ] = None,
    train_encoder: Annotated[
        TrainEncoder, typer.Option(help="speechllm: the encoders frozen, with LoRA, or in full.")
    ] = TrainEncoder.frozen,
    batch_seconds: Annotated[
        float, typer.Option(min=1.0, help="speechllm: audio seconds per device batch.")
    ] = 120.0,
    average_best: Annotated[
        int, typer.Option(min=1, help="speechllm: average the N best checkpoints (dev loss).")
    ] = 1,
    resume: Annotated[bool, typer.Option(help="Go on from the last checkpoint.")] = False,
    deepspeed: Annotated[Path | None, typer.Option(help="A DeepSpeed config (JSON).")] = None,
    num_workers: Annotated[int, typer.Option(min=0, help="Data loader processes.")] = 0,
    export: Annotated[bool, typer.Option(help="whisper: export to CTranslate2 at the end.")] = True,
    quantization: Annotated[str, typer.Option(help="Of the export.")] = "int8",
) -> None:
    """Fine-tune Whisper (LoRA or full) or train the Speech-LLM (stages 1 and 2)."""
    common = dict(
        train=str(train), dev=str(dev) if dev else None, output_dir=str(output_dir),
        learning_rate=learning_rate, warmup_steps=warmup_steps, epochs=epochs,
        max_steps=max_steps, grad_accum=grad_accum,
        eval_steps=eval_steps, save_steps=save_steps, logging_steps=logging_steps, seed=seed,
        precision=precision.value, gradient_checkpointing=gradient_checkpointing,
        speed_perturb=_floats(speed_perturb), resume=resume,
        deepspeed=str(deepspeed) if deepspeed else None, num_workers=num_workers,
    )  # fmt: skip
    given = dict(lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                 lora_targets=_names(lora_targets))  # fmt: skip
    lora = {k: v for k, v in given.items() if v is not None}
    if lr_scheduler:
        common["lr_scheduler"] = lr_scheduler
    echo = lambda m: typer.echo(m, err=True)  # noqa: E731
    try:
        if arch == Arch.whisper:
            from .train_whisper import WhisperOptions, finetune_whisper

            out = finetune_whisper(WhisperOptions(
                **common, **lora, batch_size=batch_size or 8, spec_augment=spec_augment,
                export=export, quantization=quantization, model=model, method=method.value,
                freeze_encoder=freeze_encoder,
            ), echo=echo)  # fmt: skip
            how = f"sbasr transcribe --model {out} FILES"
        else:
            from .train_speechllm import SpeechLLMOptions, finetune_speechllm

            extra = {"prompt": prompt} if prompt else {}
            out = finetune_speechllm(SpeechLLMOptions(
                **common, **lora, **extra, batch_size=batch_size or 64, encoder=model,
                encoder2=encoder2, fusion=fusion.value, projector=projector.value, llm=llm,
                stages=tuple(int(s) for s in _names(stages) or ()), init=str(init) if init
                else None, train_encoder=train_encoder.value, batch_seconds=batch_seconds,
                average_best=average_best,
            ), echo=echo)  # fmt: skip
            how = f"sbasr transcribe --engine speechllm --model {out} FILES"
    except SbasrError as e:
        raise _fail(e) from None
    except ValueError as e:  # --stages that are not numbers
        raise _fail(SbasrError(str(e))) from None
    typer.echo(f"done: {out}; transcribe with: {how}", err=True)


class ExportFormat(str, Enum):
    ct2 = "ct2"


class Quantization(str, Enum):  # export.QUANTIZATIONS; not imported, to keep start-up light
    int8 = "int8"
    int8_float16 = "int8_float16"
    int8_float32 = "int8_float32"
    float16 = "float16"
    bfloat16 = "bfloat16"
    float32 = "float32"


@app.command()
def export(
    model_dir: Annotated[
        Path, typer.Argument(help="A transformers Whisper directory or a LoRA adapter.")
    ],
    to: Annotated[ExportFormat, typer.Option(help="Target format.")] = ExportFormat.ct2,
    quantization: Annotated[
        Quantization, typer.Option(help="Weight type of the export.")
    ] = Quantization.int8,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: MODEL_DIR/ct2.")
    ] = None,
) -> None:
    """Export a fine-tuned Whisper to CTranslate2 (LoRA merged), for fast decoding."""
    from .export import export_ct2

    try:
        out = export_ct2(model_dir, output_dir, quantization.value)
    except SbasrError as e:
        raise _fail(e) from None
    typer.echo(f"exported to {out}; use it with: sbasr transcribe --model {out}")


def main() -> None:
    app()
