"""Options dataclasses that the CLI is derived from.

Each job (fine-tuning an architecture, decoding with an engine) has one dataclass that
holds every default once, in the manner of the transformers speech recipe's argument
classes. A field made with `option()` carries its help text, choices and bounds; the CLI
builds its flags from those fields (`sbasr.cli.derive`), so a default or a choice list is
never copied. Torch-free, so that `sbasr --help` stays fast.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, field, fields
from typing import Any


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    choices: tuple[str, ...] | None = None,
    min: float | None = None,
    flags: tuple[str, ...] = (),
    path: bool = False,
    cli: bool = True,
) -> Any:
    """A dataclass field with what the CLI needs to offer it as a flag.

    Args:
        default: The default; a list, dict or set is copied for each instance.
        help: The flag's help text.
        choices: The values allowed, if a closed set.
        min: The smallest value allowed.
        flags: Spellings in place of the derived `--field-name`.
        path: The flag takes a file name (completed as one).
        cli: False keeps the field for the Python API only.

    Returns:
        The dataclass field.
    """
    meta = {"help": help, "choices": choices, "min": min, "flags": flags, "path": path, "cli": cli}
    if isinstance(default, (list, dict, set)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=default, metadata=meta)


def cli_fields(cls: type) -> list[Field]:
    """The fields of an options class that the CLI offers.

    Args:
        cls: The options dataclass.

    Returns:
        Its CLI fields, in declaration order.
    """
    return [f for f in fields(cls) if f.metadata.get("cli", False)]


def default_of(f: Field) -> Any:
    """A dataclass field's default.

    Args:
        f: The field.

    Returns:
        Its default (a fresh one from its factory), or MISSING for a required field.
    """
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def check_choices(opts: object) -> None:
    """Check every field of an options object that has choices.

    Args:
        opts: The options dataclass instance.

    Raises:
        ValueError: A value is not one of its field's choices (the field is named).
    """
    for f in fields(opts):  # type: ignore[arg-type]
        allowed = f.metadata.get("choices")
        value = getattr(opts, f.name)
        if allowed and value is not None and value not in allowed:
            raise ValueError(f"{f.name} {value!r}: use one of {', '.join(allowed)}")
