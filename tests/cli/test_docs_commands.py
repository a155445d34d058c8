"""Every `sbasr` command line shown in README.md and docs/ names a real subcommand and only
options that subcommand has, so that no example fails on a misspelt or missing flag."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from sbasr.cli import build_app

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(sbasr [^`]+)`")


def _shell_lines(text: str) -> list[str]:
    """The command lines of the page: its bash and console blocks (continuations joined,
    a console block's output left out) and its inline `sbasr ...` spans."""
    lines = []
    for lang, body in FENCE.findall(text):
        if lang not in ("bash", "console"):
            continue
        joined = re.sub(r"\\\n\s*", " ", body).splitlines()
        if lang == "console":
            joined = [ln[2:] for ln in joined if ln.startswith("$ ")]
        lines += [ln.split(" #")[0] for ln in joined]
    return lines + INLINE.findall(text)


def _invocations(line: str) -> list[list[str]]:
    """The argument lists after each `sbasr` (or `-m sbasr`) in a shell line."""
    out = []
    for part in re.split(r"&&|\|\||[|;]", line):
        try:
            words = shlex.split(part)
        except ValueError:  # an inline span cut short, e.g. `sbasr transcribe ...`
            continue
        for i, word in enumerate(words):
            if word == "sbasr" and (i == 0 or words[i - 1] == "-m"):
                out.append(words[i + 1 :])
                break
    return out


def _examples() -> list[tuple[str, list[str]]]:
    found = []
    for page in PAGES:
        for line in _shell_lines(page.read_text("utf-8")):
            found += [(page.name, args) for args in _invocations(line)]
    return found


COMMAND = typer.main.get_command(build_app())


def test_the_pages_show_every_subcommand():
    shown = {args[0] for _, args in _examples() if args}
    assert set(COMMAND.commands) <= shown


@pytest.mark.parametrize(("page", "args"), _examples(), ids=lambda x: str(x)[:60])
def test_each_example_uses_options_its_command_has(page, args):
    if not args or args[0].startswith("-"):  # `sbasr --help`, `sbasr --version`
        return
    assert args[0] in COMMAND.commands, f"{page}: no command {args[0]!r}"
    command = COMMAND.commands[args[0]]
    names = {"--help", "-h"}
    names |= {name for param in command.params for name in (*param.opts, *param.secondary_opts)}
    for word in args[1:]:
        if word.startswith("-") and word != "-":
            flag = word.split("=")[0]
            assert flag in names, f"{page}: `sbasr {args[0]}` has no option {flag}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but - and _ dropped."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", [*PAGES, ROOT / "benchmarks" / "README.md"], ids=str)
def test_relative_links_lead_to_files_and_headings_that_exist(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text("utf-8")):
        if "://" in target:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text("utf-8"), re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{page.name}: {target}"
