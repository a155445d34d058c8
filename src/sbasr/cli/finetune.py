"""`sbasr finetune --arch whisper|speechllm`: fine-tune Whisper or train the Speech-LLM.

The flags are those of the two architectures' options classes (`sbasr.cli.derive`); a
flag of the other architecture than the one asked for is a usage error, never ignored.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.choices import ARCHS
from ..core.errors import SbasrError
from ..training.speechllm_options import SpeechLLMOptions
from ..training.whisper_options import WhisperOptions
from .common import choice, fail
from .derive import derived_command, flag_spelling, flags_of

Arch = choice("Arch", ARCHS)
OPTIONS: dict[str, type] = {"whisper": WhisperOptions, "speechllm": SpeechLLMOptions}


def finetune(
    arch: Annotated[Arch, typer.Option(help="What to train.")] = Arch.whisper,  # type: ignore
    *,
    given: dict[str, Any],
) -> None:
    """Fine-tune Whisper (LoRA or full) or train the Speech-LLM (stages 1 and 2)."""
    name = arch.value
    try:
        opts = _options(name, given)
        if name == "whisper":
            from ..training.whisper import finetune_whisper

            out = finetune_whisper(opts, echo=_echo)
        else:
            from ..training.speechllm import finetune_speechllm

            out = finetune_speechllm(opts, echo=_echo)
    except SbasrError as e:
        raise fail(e) from None
    except ValueError as e:  # transformers' checks of its arguments, e.g. --lr-scheduler
        raise fail(SbasrError(str(e))) from None
    except OSError as e:  # a disk that fills up or goes read-only during the run
        where = f"{e.filename}: " if e.filename else ""
        raise fail(SbasrError(f"{where}{e.strerror or e}")) from None
    typer.echo(f"done: {out}; {next_step(name, opts, out)}", err=True)


def next_step(arch: str, opts: Any, out: Path) -> str:
    """How to use what was trained, as commands that work on it as it is: a Whisper LoRA
    adapter left unexported (--no-export) needs `sbasr export` first, which `sbasr
    transcribe --model` then finds in the folder."""
    if arch == "speechllm":
        return f"transcribe with: sbasr transcribe --engine speechllm --model {out} FILES"
    if not opts.export and opts.method == "lora":
        return (
            f"export, then transcribe with: sbasr export {out}; "
            f"sbasr transcribe --model {out} FILES"
        )
    return f"transcribe with: sbasr transcribe --model {out} FILES"


def _options(arch: str, given: dict[str, Any]) -> Any:
    """The options of `arch` with the flags the user gave; a flag that belongs to the other
    architecture only is an error that names it."""
    own = {f.name for f in fields(OPTIONS[arch])}
    stray = [n for n in given if n not in own]
    if stray:
        flags = flags_of(OPTIONS)
        spelled = ", ".join(flag_spelling(n, flags) for n in stray)
        other = next(a for a, cls in OPTIONS.items() if stray[0] in {f.name for f in fields(cls)})
        kind = f"is a {other} option" if len(stray) == 1 else f"are {other} options"
        raise SbasrError(f"{spelled} {kind}; not used with --arch {arch}")
    return OPTIONS[arch](**given)


def _echo(message: str) -> None:
    typer.echo(message, err=True)


finetune = derived_command(finetune, OPTIONS)
