"""Where `sbasr transcribe` says its outputs went."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from conftest import SR
from fakes import fake_cli, fake_vad, invoke, silence, tone  # noqa: F401 - fixtures


def test_transcribe_says_where_its_outputs_went(tmp_path, fake_cli):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b"):
        sf.write(data / f"{name}.wav", np.concatenate([silence(0.5), tone(440, 1), silence(1)]), SR)
    out = invoke("transcribe", str(data), "-f", "keyed")
    assert out.exit_code == 0, out.output
    assert f"outputs beside the inputs, in {data} (--output-dir" in out.output
    assert (data / "a.keyed").is_file()
    out = invoke("transcribe", str(data / "a.wav"), "-f", "keyed", "-o", str(tmp_path / "hyp"))
    assert out.exit_code == 0 and f"outputs in {tmp_path / 'hyp'}" in out.output
    # on standard output there is nothing to say
    out = invoke("transcribe", str(data / "a.wav"))
    assert out.exit_code == 0 and "outputs" not in out.output
