"""Typer commands derived from options dataclasses (`sbasr.core.options`).

A command's flags are the CLI fields of one or more options classes: the flag name, type,
default, choices and bounds all come from the field, so nothing is declared twice. Only
the flags the user gave are passed on, and the dataclass supplies every other default;
a field that two classes default differently (LoRA rank: Whisper 32, Speech-LLM 16)
shows both in its help.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.options import cli_fields, default_of
from .common import choice


class Flag:
    """One derived flag: the fields it stands for, by class label."""

    def __init__(self, name: str, owners: dict[str, tuple[type, Field]]) -> None:
        self.name = name
        self.owners = owners
        first_cls, first = next(iter(owners.values()))
        self.field = first
        self.type = typing.get_type_hints(first_cls)[name]
        defaults = {label: default_of(f) for label, (_, f) in owners.items()}
        self.uniform = len({repr(v) for v in defaults.values()}) == 1
        self.defaults = defaults

    @property
    def option_name(self) -> str:
        return self.field.metadata.get("flags") or ("--" + self.name.replace("_", "-"),)

    def parameter(self, all_labels: Sequence[str]) -> inspect.Parameter:
        meta = self.field.metadata
        base, optional = _unwrap(self.type)
        default = next(iter(self.defaults.values())) if self.uniform else None
        required = default is MISSING
        default = None if required else default
        show: bool | str = True
        help_text = meta.get("help", "")
        if len(self.owners) < len(all_labels):
            help_text = f"{'/'.join(self.owners)}: {help_text}"
        if not self.uniform:
            show = ", ".join(f"{k} {_shown(v)}" for k, v in self.defaults.items())
        elif isinstance(default, str) and not default.isprintable():
            show = repr(default)  # a newline (the Speech-LLM's prompt) would break the table
        if meta.get("choices"):
            enum = choice(_camel(self.name), meta["choices"])
            annotation: Any = enum | None if default is None else enum
            default = None if default is None else enum(default)
        elif _is_sequence(base):
            annotation = str | None
            show = _shown(default) if self.uniform else show
            default = None
        elif base is bool:
            annotation = bool | None if default is None else bool
        elif meta.get("path"):
            annotation = Path | None
            show = str(default) if self.uniform and default not in (None, MISSING) else show
            default = None
        else:
            annotation = base | None if default is None or optional else base
        names = self.option_name
        if base is bool and not meta.get("flags"):  # typer's own --x/--no-x pair
            names = (f"{names[0]}/--no-{names[0][2:]}",)
        if required:
            info = typer.Option(*names, help=help_text, min=meta.get("min"))
            return inspect.Parameter(
                self.name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[annotation, info]
            )
        # a comma list is typed as text: say it is a list
        metavar = "LIST" if _is_sequence(base) else None
        info = typer.Option(
            *names, help=help_text, min=meta.get("min"), show_default=show, metavar=metavar
        )
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=default,
            annotation=Annotated[annotation, info],
        )

    def convert(self, value: Any) -> Any:
        """The CLI's value as the field's type."""
        if value is None:
            return None
        if isinstance(value, Enum):
            return value.value
        base, _ = _unwrap(self.type)
        if _is_sequence(base):
            (item, *_) = typing.get_args(base) or (str,)
            return tuple(item(x.strip()) for x in str(value).split(",") if x.strip())
        if isinstance(value, Path):
            return str(value)
        return value


def flags_of(classes: dict[str, type], shared: Sequence[type] = ()) -> dict[str, Flag]:
    """Every CLI field of `shared` and `classes` (label -> class), merged by name, in order.
    A field of a `shared` class belongs to every label (no label in its help)."""
    owners: dict[str, dict[str, tuple[type, Field]]] = {}
    for cls in shared:
        for f in cli_fields(cls):
            owners[f.name] = {label: (cls, f) for label in classes or {"": cls}}
    for label, cls in classes.items():
        for f in cli_fields(cls):
            owners.setdefault(f.name, {})[label] = (cls, f)
    return {name: Flag(name, by) for name, by in owners.items()}


def derived_command(
    func: Callable[..., None],
    classes: dict[str, type],
    skip: Sequence[str] = (),
    shared: Sequence[type] = (),
) -> Callable[..., None]:
    """A command whose signature is `func`'s own parameters followed by the flags of
    `shared` and `classes`; `func` is called with its parameters and `given`, the flags the
    user gave, as field values (`{name: value}`). `shared` classes apply whatever the label
    (engine settings beside per-engine decoding options, say)."""
    flags = {n: f for n, f in flags_of(classes, shared).items() if n not in skip}
    head = [
        p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "given"
    ]
    ctx_param = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    labels = list(classes)
    derived = [f.parameter(labels) for f in flags.values()]

    def command(ctx: typer.Context, **kwargs: Any) -> None:
        given = {}
        for name, flag in flags.items():
            # by name: the enum is click's ParameterSource, whichever click typer runs on
            source = ctx.get_parameter_source(name)
            if source is None or source.name == "DEFAULT":
                continue
            try:
                given[name] = flag.convert(kwargs[name])
            except ValueError as e:  # an item of a comma list that is no number: --stages x
                raise typer.BadParameter(str(e), ctx, param_hint=flag.option_name[0]) from None
        func(**{p.name: kwargs[p.name] for p in head}, given=given)

    params = [ctx_param, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in head), *derived]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = func.__name__
    command.__doc__ = func.__doc__
    command.__wrapped_flags__ = flags  # type: ignore[attr-defined]
    return command


def flag_spelling(name: str, flags: dict[str, Flag]) -> str:
    return flags[name].option_name[0] if name in flags else "--" + name.replace("_", "-")


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(T, optional) for T, T | None and Optional[T]."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), True
    return tp, False


def _is_sequence(tp: Any) -> bool:
    return typing.get_origin(tp) in (tuple, list) or tp in (tuple, list)


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))
