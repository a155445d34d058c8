"""A real speech recording to try sbasr on, with nothing but pip: the `examples` extra.

    python -m sbasr.examples                        # where the recording is
    python -m sbasr.examples examples/speech.wav   # a copy of it there
    python -m sbasr.examples examples/speech.wav --manifest examples/speech.jsonl

The recording comes from a PyPI package, never from sbasr itself: `sample.wav` of
AMFM_decompy (MIT licence), 0.9 s of English speech, 16 kHz mono, one speaker saying "How
do we define it?". The manifest (JSON Lines: id, audio, text, language) is the form that
`sbasr finetune` and `sbasr transcribe` read, so the same file also runs the training
examples.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .core.errors import SbasrError


@dataclass(frozen=True)
class Example:
    """A recording shipped inside an installable package, with what is said in it."""

    name: str
    package: str  # the distribution, for pip
    module: str  # the import name that holds the file
    resource: str  # the file inside the module's directory
    text: str
    language: str
    source: str  # where it comes from and under what licence

    def path(self) -> Path:
        """The installed recording; SbasrError naming the extra when it is missing."""
        from importlib.util import find_spec

        spec = find_spec(self.module)
        if spec is not None and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / self.resource
            if path.is_file():
                return path
        raise SbasrError(
            f"the example recording {self.name!r} is not installed: "
            f"pip install 'sbasr[examples]' (package {self.package})"
        )

    def row(self, audio: str) -> dict[str, str]:
        """Its manifest row, the audio at `audio`."""
        return {"id": self.name, "audio": audio, "text": self.text, "language": self.language}


EXAMPLES: dict[str, Example] = {
    "speech": Example(
        name="speech",
        package="amfm-decompy",
        module="amfm_decompy",
        resource="sample.wav",
        text="How do we define it?",
        language="en",
        source="AMFM_decompy's sample.wav, MIT licence",
    ),
}
DEFAULT_EXAMPLE = "speech"


def get_example(name: str = DEFAULT_EXAMPLE) -> Example:
    try:
        return EXAMPLES[name]
    except KeyError:
        raise SbasrError(f"no example {name!r}; the examples are: {', '.join(EXAMPLES)}") from None


def example_path(name: str = DEFAULT_EXAMPLE) -> Path:
    """Where the installed example recording `name` is (read it, don't write to it)."""
    return get_example(name).path()


def copy_example(dest: str | Path, name: str = DEFAULT_EXAMPLE) -> Path:
    """A copy of the example recording at `dest` (its folder made if need be)."""
    source = example_path(name)
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"{name}{source.suffix}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return dest


def write_manifest(path: str | Path, audio: str | Path, name: str = DEFAULT_EXAMPLE) -> Path:
    """A one-row JSON Lines manifest for the example at `audio`: the audio relative to the
    manifest's folder when it lies under it, so the two can move together."""
    example = get_example(name)
    path, audio = Path(path), Path(audio)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        where = audio.resolve().relative_to(path.parent.resolve()).as_posix()
    except ValueError:
        where = str(audio.resolve())
    path.write_text(json.dumps(example.row(where), ensure_ascii=False) + "\n", "utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sbasr.examples",
        description="Print where the example recording is, or copy it to DEST; "
        "--manifest also writes a JSON Lines manifest with its transcript.",
    )
    parser.add_argument("dest", nargs="?", help="copy the recording here (a file or a folder)")
    parser.add_argument("--manifest", metavar="JSONL", help="write its manifest here")
    parser.add_argument("--name", default=DEFAULT_EXAMPLE, choices=sorted(EXAMPLES))
    args = parser.parse_args(argv)
    try:
        example = get_example(args.name)
        audio = copy_example(args.dest, args.name) if args.dest else example.path()
        if args.manifest:
            write_manifest(args.manifest, audio, args.name)
    except (SbasrError, OSError) as e:
        print(f"sbasr: error: {e}", file=sys.stderr)
        return 2
    print(audio)
    print(
        f'{example.name}: "{example.text}" ({example.language}; {example.source})'
        + (f"; manifest {args.manifest}" if args.manifest else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
