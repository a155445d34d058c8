"""Static shell completion scripts for bash, zsh and fish, generated from the typer app.

Static, rather than typer's scripts that call back into Python on every TAB: sbasr
imports torch for some commands, and a completion must answer at once. Regenerate after
changing the CLI with `python tools/completions.py completions/` (a test fails otherwise).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, get_args

FILES = {"bash": "sbasr.bash", "zsh": "_sbasr", "fish": "sbasr.fish"}
_HEADER = "generated from the sbasr CLI by `python tools/completions.py`; do not edit"


@dataclass
class _Option:
    names: list[str]  # every spelling, long first
    help: str
    takes_value: bool
    choices: list[str] | None
    is_path: bool


@dataclass
class _Command:
    name: str
    help: str
    options: list[_Option]
    takes_files: bool


def _model() -> tuple[list[_Option], list[_Command]]:
    import typer.main

    from sbasr.cli import app

    # Typer carries its own copy of click, so parameters are told apart by their
    # declared kind, not by isinstance.
    group = typer.main.get_command(app)
    ctx = group.context_class(group)
    root = [_option(p) for p in group.get_params(ctx) if p.param_type_name == "option"]
    commands = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        params = cmd.get_params(ctx)
        commands.append(
            _Command(
                name,
                _first_line(cmd.get_short_help_str(limit=200)),
                [_option(p) for p in params if p.param_type_name == "option"],
                any(p.param_type_name == "argument" for p in params)
                or bool(cmd.context_settings.get("allow_extra_args")),
            )
        )
    return root, commands


def _option(param: Any) -> _Option:
    names = sorted(param.opts + param.secondary_opts, key=lambda s: (not s.startswith("--"), s))
    kind = _annotation(param)
    choices = [m.value for m in kind] if isinstance(kind, type) and issubclass(kind, Enum) else None
    is_path = isinstance(kind, type) and issubclass(kind, PurePath)
    return _Option(names, _first_line(param.help or ""), not param.is_flag, choices, is_path)


def _annotation(param: Any) -> Any:
    """The Python type the option was declared with (an Enum, Path, str ...), None removed."""
    descriptor = getattr(param, "type_descriptor", None)  # typer >= 0.25
    kind = getattr(descriptor, "annotation", None)
    if kind is None:  # older typer: a click ParamType
        ptype = getattr(param, "type", None)
        return getattr(ptype, "enum", None) or (Path if type(ptype).__name__ == "Path" else None)
    args = [a for a in get_args(kind) if a is not type(None)]
    return args[0] if args else kind


def _first_line(text: str) -> str:
    return " ".join(text.split()).split(". ")[0].rstrip(".")


def bash(root: list[_Option], commands: list[_Command]) -> str:
    top = " ".join([c.name for c in commands] + [n for o in root for n in o.names])
    lines = [
        f"# bash completion for sbasr ({_HEADER})",
        "_sbasr() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    local cmd="" i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case "${COMP_WORDS[i]}" in',
        "            -*) ;;",
        '            *) cmd="${COMP_WORDS[i]}"; break ;;',
        "        esac",
        "    done",
        "    COMPREPLY=()",
        '    case "$cmd" in',
        '        "")',
        f'            COMPREPLY=($(compgen -W "{top}" -- "$cur")) ;;',
    ]
    for cmd in commands:
        lines.append(f"        {cmd.name})")
        valued = [o for o in cmd.options if o.takes_value]
        if valued:
            lines.append('            case "$prev" in')
            for o in valued:
                if o.choices:
                    action = f'COMPREPLY=($(compgen -W "{" ".join(o.choices)}" -- "$cur"))'
                elif o.is_path:
                    action = 'COMPREPLY=($(compgen -f -- "$cur"))'
                else:
                    action = ":"  # a free value: nothing to offer
                lines.append(f"                {'|'.join(o.names)}) {action}; return ;;")
            lines.append("            esac")
        words = " ".join(n for o in cmd.options for n in o.names)
        files = 'COMPREPLY=($(compgen -f -- "$cur"))' if cmd.takes_files else ":"
        lines += [
            '            if [[ "$cur" == -* ]]; then',
            f'                COMPREPLY=($(compgen -W "{words}" -- "$cur"))',
            "            else",
            f"                {files}",
            "            fi ;;",
        ]
    lines += ["    esac", "}", "complete -o filenames -F _sbasr sbasr", ""]
    return "\n".join(lines)


def _zsh_quote(text: str) -> str:
    return text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh_spec(o: _Option) -> str:
    desc = _zsh_quote(o.help)
    if o.choices:
        action = f":{o.names[0].lstrip('-')}:({' '.join(o.choices)})"
    elif o.is_path:
        action = ":file:_files"
    elif o.takes_value:
        action = f":{o.names[0].lstrip('-')}: "
    else:
        action = ""
    if len(o.names) == 1:
        return f"'{o.names[0]}[{desc}]{action}'"
    group = " ".join(o.names)
    return f"'({group})'{{{','.join(o.names)}}}'[{desc}]{action}'"


def zsh(root: list[_Option], commands: list[_Command]) -> str:
    lines = [
        "#compdef sbasr",
        f"# zsh completion for sbasr ({_HEADER})",
        "_sbasr() {",
        "    local -a commands",
        "    commands=(",
        *(f"        '{c.name}:{_zsh_quote(c.help)}'" for c in commands),
        "    )",
        "    local state",
        "    _arguments -C \\",
        *(f"        {_zsh_spec(o)} \\" for o in root),
        "        '1: :->command' \\",
        "        '*:: :->args'",
        '    case "$state" in',
        "        command) _describe 'command' commands ;;",
        "        args)",
        '            case "$words[1]" in',
    ]
    for cmd in commands:
        specs = [_zsh_spec(o) for o in cmd.options]
        if cmd.takes_files:
            specs.append("'*:file:_files'")
        lines.append(f"                {cmd.name})")
        if not specs:
            lines.append("                    _message 'no arguments' ;;")
            continue
        lines.append("                    _arguments \\")
        lines += [f"                        {s} \\" for s in specs[:-1]]
        lines.append(f"                        {specs[-1]} ;;")
    lines += ["            esac ;;", "    esac", "}", '_sbasr "$@"', ""]
    return "\n".join(lines)


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(o: _Option, condition: str) -> str:
    parts = [f"complete -c sbasr -n {condition}"]
    for name in o.names:
        parts.append(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}")
    if o.choices:
        parts.append(f"-x -a {_fish_quote(' '.join(o.choices))}")
    elif o.is_path:
        parts.append("-r -F")
    elif o.takes_value:
        parts.append("-x")
    parts.append(f"-d {_fish_quote(o.help)}")
    return " ".join(parts)


def fish(root: list[_Option], commands: list[_Command]) -> str:
    names = " ".join(c.name for c in commands)
    lines = [f"# fish completion for sbasr ({_HEADER})", "complete -c sbasr -f"]
    lines += [_fish_option(o, "__fish_use_subcommand") for o in root]
    for cmd in commands:
        lines.append(
            f"complete -c sbasr -n __fish_use_subcommand -a {cmd.name} -d {_fish_quote(cmd.help)}"
        )
    for cmd in commands:
        cond = _fish_quote(f"__fish_seen_subcommand_from {cmd.name}")
        lines += [_fish_option(o, cond) for o in cmd.options]
        if cmd.takes_files:
            lines.append(f"complete -c sbasr -n {cond} -F")
    lines.append(f"# subcommands: {names}")
    return "\n".join(lines) + "\n"


def scripts() -> dict[str, str]:
    """File name -> script text, for every supported shell."""
    root, commands = _model()
    return {
        FILES[shell]: render(root, commands)
        for shell, render in (("bash", bash), ("zsh", zsh), ("fish", fish))
    }


def main(argv: list[str] | None = None) -> None:
    out = Path((argv if argv is not None else sys.argv[1:] or ["completions"])[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in scripts().items():
        (out / name).write_text(text, encoding="utf-8")
        print(out / name)


if __name__ == "__main__":
    main()
