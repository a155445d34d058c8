"""Each command's defaults are its options dataclasses' and its library functions': a
default copied into the CLI (or into `sbasr score`'s fast path) and changed on one side
only fails here."""

from __future__ import annotations

import inspect
from dataclasses import fields
from enum import Enum
from importlib import import_module
from pathlib import Path

import pytest

from sbasr.asr.api import transcribe as transcribe_api
from sbasr.cli import COMMANDS
from sbasr.cli.derive import _shown
from sbasr.cli.score_core import ScoreRun, parse_score_args
from sbasr.scoring.api import score, score_summary
from sbasr.scoring.options import ScoreOptions
from sbasr.speechllm.config import SpeechLLMConfig
from sbasr.training.speechllm_options import RECIPES, SpeechLLMOptions
from sbasr.whisper.export import export_ct2

# The library functions a command hands its own (not derived) parameters to.
LIBRARY = {
    "transcribe": [transcribe_api],
    "export": [export_ct2],
    "score": [score, score_summary],
}
# A command parameter named otherwise than the library's.
RENAMED = {"output_dir": "output"}


def _command(name: str):
    import typer.main

    from sbasr.cli import app

    group = typer.main.get_command(app)
    ctx = group.context_class(group)
    return group.get_command(ctx, name), ctx


def _value(default):
    if isinstance(default, Enum):
        return default.value
    if isinstance(default, Path):
        return str(default)
    return default


def _library_defaults(name: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for func in LIBRARY.get(name, []):
        for p in inspect.signature(func).parameters.values():
            if p.default is not inspect.Parameter.empty:
                found.setdefault(p.name, p.default)
    return found


@pytest.mark.parametrize("name", COMMANDS)
def test_cli_defaults_are_the_options_defaults(name):
    module = import_module(f"sbasr.cli.{COMMANDS[name]}")
    flags = getattr(getattr(module, name), "__wrapped_flags__", {})
    library = _library_defaults(name)
    command, ctx = _command(name)
    checked = 0
    for param in command.get_params(ctx):
        if param.name == "help":
            continue
        flag = flags.get(param.name)
        if flag is not None:
            # A flag not given is left to the dataclass; what help shows must be its default.
            if not flag.uniform:
                for label, default in flag.defaults.items():
                    assert f"{label} {_shown(default)}" in str(param.show_default), param.name
            elif param.default is not None:
                (default,) = set(map(repr, flag.defaults.values()))
                assert repr(flag.convert(param.default)) == default, param.name
            checked += 1
        key = RENAMED.get(param.name, param.name)
        if key in library and param.default is not None:
            assert _value(param.default) == library[key], f"{name} {param.name}"
            checked += 1
    if flags or library:
        assert checked, f"{name}: no default compared"


def test_score_defaults_are_one_dataclass_for_library_cli_and_fast_path(monkeypatch):
    defaults = {f.name: f.default for f in fields(ScoreOptions)}
    for func in (score, score_summary):
        params = inspect.signature(func).parameters
        assert {n: params[n].default for n in defaults} == defaults, func.__name__
    assert parse_score_args(["h", "r"])["options"] == ScoreRun()

    from typer.testing import CliRunner

    import sbasr.cli.score
    from sbasr.cli import app

    seen = []
    monkeypatch.setattr(sbasr.cli.score, "run_score", lambda h, r, o: seen.append(o) or 0)
    assert CliRunner().invoke(app, ["score", "h", "r"]).exit_code == 0
    assert seen == [ScoreRun()]


def test_model_defaults_agree_with_the_default_recipe():
    recipe = RECIPES[SpeechLLMOptions.__dataclass_fields__["recipe"].default]
    assert SpeechLLMConfig().hypothesis == recipe.hypothesis
    opts = SpeechLLMOptions(train="t", output_dir="o")
    assert opts.model == SpeechLLMConfig().encoder
    config = opts.model_config()
    for f in fields(SpeechLLMConfig):
        if f.name in {g.name for g in fields(SpeechLLMOptions)} and f.name != "dev_wer":
            assert getattr(config, f.name) == getattr(SpeechLLMConfig(), f.name), f.name
