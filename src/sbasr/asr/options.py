"""What a transcription takes: how recordings are cut, how each engine decodes, and where
an engine runs.

`DecodeOptions` holds what every engine honours; `WhisperDecodeOptions` adds what only
Whisper does (temperature fallback, prompts, hotwords, word times). An option an engine
cannot honour is an error, never silently dropped. Torch- and numpy-free: `sbasr
transcribe` derives its flags from these classes at start-up (`sbasr.cli.derive`).
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any, ClassVar

from ..core.choices import CHANNELS, DEVICES, ENGINES
from ..core.constants import SPEECHLLM_BATCH_SIZE, SPEECHLLM_MAX_NEW_TOKENS
from ..core.errors import SbasrError
from ..core.options import check_choices, default_of, option
from ..io.languages import language_choices, user_language


@dataclass(slots=True)
class DecodeOptions:
    """How to decode, with any engine. None: the engine's own default."""

    engine: ClassVar[str | None] = None  # the engine a subclass is for

    language: str | None = option(
        None,
        "Force a language, as a code or an English name: it, Italian (else detected).",
        flags=("--language", "-l"),
    )
    beam_size: int | None = option(None, "Beam width.", min=1)
    batch_size: int | None = option(None, "Segments decoded together.", min=1)
    max_new_tokens: int | None = option(
        None, "Longest text per segment, in tokens (None: as long as the model allows).", min=1
    )
    # Predict times inside a span (VAD spans hold several sentences). Oracle segments keep
    # their own times, and decoding without timestamp tokens is cheaper.
    timestamps: bool = option(True, cli=False)


def _engine_default(name: str, value: Any) -> Any:
    """DecodeOptions' field `name` with an engine's own default (help and bounds kept)."""
    meta = dict(DecodeOptions.__dataclass_fields__[name].metadata)
    return option(value, meta.pop("help"), **meta)


@dataclass(slots=True)
class WhisperDecodeOptions(DecodeOptions):
    """How the Whisper engine decodes: the common options and faster-whisper's own."""

    engine: ClassVar[str] = "whisper"

    beam_size: int = _engine_default("beam_size", 5)
    batch_size: int = _engine_default("batch_size", 1)
    temperature: float = option(0.0, "First temperature.", min=0.0)
    temperature_increment: float = option(
        0.2, "Fallback step on failed decodes; 0 = no fallback.", min=0.0
    )
    initial_prompt: str | None = option(None, "Text to prime the decoder.")
    hotwords: str | None = option(None, "Words to favour.")
    condition_on_previous_text: bool = option(
        True, "Prompt each span with the text before it, within one speaker's contiguous speech."
    )
    word_timestamps: bool = option(False, "Time every word.")

    def temperatures(self) -> tuple[float, ...]:
        """The fallback ladder faster-whisper retries a failed window with: from
        `temperature` up to 1 in steps of `temperature_increment` (Whisper's own scheme)."""
        ladder = [self.temperature]
        step = self.temperature_increment
        while step > 0 and ladder[-1] + step <= 1.0 + 1e-9:
            ladder.append(round(ladder[-1] + step, 6))
        return tuple(ladder)


@dataclass(slots=True)
class SpeechLLMDecodeOptions(DecodeOptions):
    """How the Speech-LLM engine decodes: the common options, its own defaults."""

    engine: ClassVar[str] = "speechllm"

    beam_size: int = _engine_default("beam_size", 1)
    batch_size: int = _engine_default("batch_size", SPEECHLLM_BATCH_SIZE)
    # Above the paper's 200, which suits its LLMs' tokenizers: a small LLM's tokenizer can
    # spend far more tokens a second on some languages. The duration budget
    # (`token_budget`) is the guard against runaway text.
    max_new_tokens: int = _engine_default("max_new_tokens", SPEECHLLM_MAX_NEW_TOKENS)
    check_corrections: bool = option(
        True,
        "Models trained with --hypothesis: keep the LLM's change to Whisper's text only "
        "when Whisper and the LLM together score it higher.",
    )
    rescore: bool = option(
        True,
        "Models trained with --rescore (or given --rescore-weight): choose among Whisper's "
        "N-best transcripts and the LLM's own by the two models' combined log-probability.",
    )
    nbest: int | None = option(
        None, "Rescoring: Whisper's hypotheses per span (default: the model's).", min=1
    )
    rescore_weight: float | None = option(
        None,
        "Rescoring: the weight of Whisper's score against the LLM's, 0 to 1 (default: the "
        "one chosen on the dev set in training).",
        min=0.0,
    )
    rescore_own: bool = option(True, "Rescoring: the LLM's own transcript is a candidate too.")


ENGINE_OPTIONS: dict[str, type[DecodeOptions]] = {
    "whisper": WhisperDecodeOptions,
    "speechllm": SpeechLLMDecodeOptions,
}


@dataclass(slots=True)
class EngineSettings:
    """Where and how an engine runs; the same for every engine."""

    device: str = option("auto", "Where to run.", choices=DEVICES)
    compute_type: str = option("auto", "CTranslate2 compute type: auto, int8, float16, float32 ...")
    threads: int = option(0, "CPU threads; 0 = all cores.", min=0)
    # Which GPU of several: torchrun's LOCAL_RANK, so that each rank has its own.
    device_index: int = option(0, cli=False)

    def __post_init__(self) -> None:
        _check(self)


@dataclass(slots=True)
class TranscribeOptions:
    """How recordings are cut and decoded, engine aside."""

    channels: str = option("mix", "split: each channel is its own speaker.", choices=CHANNELS)
    language_per_segment: bool = option(
        False, "Detect the language of each segment (code-switching)."
    )
    decode: DecodeOptions = field(default_factory=DecodeOptions)

    def __post_init__(self) -> None:
        _check(self)


@dataclass(slots=True)
class ShardOptions:
    """Which part of a large run this process does (job arrays; torchrun sets it itself)."""

    shard: str | None = option(
        None,
        "Transcribe part K of N (K/N, K from 0), split by audio duration as torchrun's ranks "
        "split it; join the parts with `sbasr merge OUTPUT_DIR`.",
    )


def engine_options(engine: str, options: DecodeOptions | None = None) -> DecodeOptions:
    """`options` as engine `engine`'s own options class.

    A common option left at its default (None, or the default of the engine `options`
    was made for) takes `engine`'s default; an option of another engine that was set is
    an SbasrError naming it, so that nothing the user asked for is silently ignored.
    """
    target = _options_class(engine)
    options = options if options is not None else DecodeOptions()
    if type(options) is target:
        return options
    own = {f.name for f in fields(target)}
    values = {}
    for f in fields(options):
        value = getattr(options, f.name)
        if value == default_of(f):
            continue
        if f.name not in own:
            raise SbasrError(
                f"{flag_of(f)} is a {type(options).engine} engine option; "
                f"the {engine} engine cannot honour it"
            )
        values[f.name] = value
    return target(**values)


def options_from(engine: str, values: dict[str, Any]) -> tuple[TranscribeOptions, EngineSettings]:
    """The options of a transcription with `engine` from flat field values (what the CLI
    was given): an option of another engine is an SbasrError naming its flag."""
    target = _options_class(engine)
    owners = {f.name: cls for cls in ENGINE_OPTIONS.values() for f in fields(cls)}
    decode = {f.name for f in fields(target)}
    settings = {f.name for f in fields(EngineSettings)}
    cut = {f.name for f in fields(TranscribeOptions)}
    for name in values:
        if name in decode or name in settings or name in cut:
            continue
        if name in owners:
            f = owners[name].__dataclass_fields__[name]
            raise SbasrError(
                f"{flag_of(f)} is a {owners[name].engine} engine option; "
                f"the {engine} engine cannot honour it"
            )
        raise SbasrError(f"unknown option {name!r}")
    if values.get("language"):  # "italian" is "it"; "zz" fails before anything loads
        values = {**values, "language": check_language(values["language"])}
    options = TranscribeOptions(
        **{k: v for k, v in values.items() if k in cut},
        decode=target(**{k: v for k, v in values.items() if k in decode}),
    )
    return options, EngineSettings(**{k: v for k, v in values.items() if k in settings})


def check_language(value: str) -> str:
    """The code of the language a user asked for (`--language`), checked before a model loads
    rather than once per file after.

    Args:
        value: A Whisper language code or an English name, in any case.

    Returns:
        The language code.

    Raises:
        SbasrError: Neither a code nor a name Whisper knows.
    """
    code = user_language(value)
    if code is None:
        import difflib

        near = difflib.get_close_matches(value.strip().lower(), language_choices(), n=3)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise SbasrError(
            f"--language {value}: unknown language: give a code (en, it, zh ...) or an English "
            f"name (English, Italian ...){hint}"
        )
    return code


def flag_of(f: Field) -> str:
    """The command-line spelling of an options field."""
    return (f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),))[0]


def _options_class(engine: str) -> type[DecodeOptions]:
    if engine not in ENGINE_OPTIONS:
        raise SbasrError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}")
    return ENGINE_OPTIONS[engine]


def _check(opts: object) -> None:
    try:
        check_choices(opts)
    except ValueError as e:
        raise SbasrError(str(e)) from None
