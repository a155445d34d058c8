"""How every command's help reads: click's plain layout (help text beside the flags,
wrapped in the room the terminal has, a long flag on a line of its own) with plain
metavars: N, NUM, TEXT, FILE, DIR, LIST, and choices as one word, `[txt|srt|...]`, which
never wraps inside."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from typer.core import TyperCommand


def metavar(param: Any) -> str | None:
    """The plain metavar of typer parameter `param`; None for a flag (it takes none)."""
    if getattr(param, "is_flag", False):
        return None
    kind, choices, is_path = _kind(param)
    if choices:
        name = "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
    elif is_path:
        name = "DIR" if "dir" in param.name else "FILE"
    elif kind is int:
        name = "N"
    elif kind is float:
        name = "NUM"
    else:
        name = "TEXT"
    if param.param_type_name == "argument":  # its name: HYP, FILES (typer adds "...")
        return param.name.upper()
    return name


def _kind(param: Any) -> tuple[Any, tuple | None, bool]:
    """(Python type, choices, whether a path) of a parameter, from typer's description of
    it (typer 0.2x) or, before that, from click's parameter type."""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:
        annotation = desc.annotation
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) in (list, tuple) and args:
            annotation = args[0]
        is_path = desc.is_path or (isinstance(annotation, type) and issubclass(annotation, Path))
        return annotation, desc.choices, bool(is_path)
    name = param.type.name
    kind = int if name.startswith("integer") else float if name.startswith("float") else str
    return kind, getattr(param.type, "choices", None), name == "path"


class PlainHelpCommand(TyperCommand):
    """A typer command whose help shows plain metavars (see the module's docstring); a
    flag's default is said only where it is on (`[default: on]`): off needs no words."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            flag = getattr(param, "is_flag", False) and param.param_type_name == "option"
            if flag and not isinstance(param.show_default, str):  # a string: kept as it is
                if param.default is True and param.show_default:
                    param.help = f"{param.help or ''}  [default: on]".strip()
                param.show_default = False
            elif param.metavar is None:
                param.metavar = metavar(param)
            if param.param_type_name == "argument":
                # typer writes an argument's type after its name (`FILES <list[Path]>`):
                # the name says it, so this argument shows none
                param.display_type_rich = lambda ctx: None
