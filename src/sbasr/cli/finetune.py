"""`sbasr finetune --arch whisper|speechllm`: fine-tune Whisper or train the Speech-LLM."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import ARCHS, FUSIONS, METHODS, PRECISIONS, PROJECTORS, TRAIN_ENCODER
from ..errors import SbasrError
from .common import choice, fail

Arch = choice("Arch", ARCHS)
Method = choice("Method", METHODS)
Precision = choice("Precision", PRECISIONS)
TrainEncoder = choice("TrainEncoder", TRAIN_ENCODER)
FusionKind = choice("FusionKind", FUSIONS)
Projector = choice("Projector", PROJECTORS)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(t for t in text.split(",") if t) if text is not None else None


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
        train=str(train),
        dev=str(dev) if dev else None,
        output_dir=str(output_dir),
        learning_rate=learning_rate,
        warmup_steps=warmup_steps,
        epochs=epochs,
        max_steps=max_steps,
        grad_accum=grad_accum,
        eval_steps=eval_steps,
        save_steps=save_steps,
        logging_steps=logging_steps,
        seed=seed,
        precision=precision.value,
        gradient_checkpointing=gradient_checkpointing,
        speed_perturb=_floats(speed_perturb),
        resume=resume,
        deepspeed=str(deepspeed) if deepspeed else None,
        num_workers=num_workers,
    )
    given = dict(
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_targets=_names(lora_targets),
    )
    lora = {k: v for k, v in given.items() if v is not None}
    if lr_scheduler:
        common["lr_scheduler"] = lr_scheduler
    echo = lambda m: typer.echo(m, err=True)  # noqa: E731
    try:
        if arch == Arch.whisper:
            from ..whisper.finetune import WhisperOptions, finetune_whisper

            out = finetune_whisper(
                WhisperOptions(
                    **common,
                    **lora,
                    batch_size=batch_size or 8,
                    spec_augment=spec_augment,
                    export=export,
                    quantization=quantization,
                    model=model,
                    method=method.value,
                    freeze_encoder=freeze_encoder,
                ),
                echo=echo,
            )
            how = f"sbasr transcribe --model {out} FILES"
        else:
            from ..speechllm.train import SpeechLLMOptions, finetune_speechllm

            extra = {"prompt": prompt} if prompt else {}
            out = finetune_speechllm(
                SpeechLLMOptions(
                    **common,
                    **lora,
                    **extra,
                    batch_size=batch_size or 64,
                    encoder=model,
                    encoder2=encoder2,
                    fusion=fusion.value,
                    projector=projector.value,
                    llm=llm,
                    stages=tuple(int(s) for s in _names(stages) or ()),
                    init=str(init) if init else None,
                    train_encoder=train_encoder.value,
                    batch_seconds=batch_seconds,
                    average_best=average_best,
                ),
                echo=echo,
            )
            how = f"sbasr transcribe --engine speechllm --model {out} FILES"
    except SbasrError as e:
        raise fail(e) from None
    except ValueError as e:  # --stages that are not numbers
        raise fail(SbasrError(str(e))) from None
    typer.echo(f"done: {out}; transcribe with: {how}", err=True)
