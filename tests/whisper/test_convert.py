"""CTranslate2 -> transformers -> CTranslate2 on real weights (the embedded tiny.en)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import speak

from sbasr.whisper.ct2 import ct2_to_transformers, read_ct2
from sbasr.whisper.models import resolve_model


@pytest.fixture(scope="module")
def clip():
    return speak("Enter your account number followed by the pound key.")


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return ct2_to_transformers(resolve_model("tiny.en"), tmp_path_factory.mktemp("hf") / "m")


def test_reader_sees_every_weight_once():
    v = read_ct2(f"{resolve_model('tiny.en')}/model.bin")
    # the output projection is stored as an alias of the token embeddings (tied weights)
    projection, embeddings = v["decoder/projection/weight"], v["decoder/embeddings/weight"]
    assert projection.shape == (51864, 384) and np.array_equal(projection, embeddings)
    assert v["encoder/conv1/weight"].shape == (384, 80, 3)
    assert all(a.dtype == np.float32 for a in v.values())
    assert not any(name.endswith("_scale") for name in v)  # scales applied, not returned


def test_transformers_model_matches_ctranslate2(hf_dir, clip):
    import ctranslate2
    import torch
    from faster_whisper import WhisperModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    proc = WhisperProcessor.from_pretrained(hf_dir)
    model = WhisperForConditionalGeneration.from_pretrained(hf_dir).eval()
    feats = proc.feature_extractor(clip, sampling_rate=16_000, return_tensors="pt").input_features
    with torch.no_grad():
        hf_enc = model.model.encoder(feats).last_hidden_state.numpy()
        tokens = model.generate(feats, num_beams=1, do_sample=False)
    hf_text = proc.batch_decode(tokens, skip_special_tokens=True)[0].strip()

    fw = WhisperModel(resolve_model("tiny.en"), compute_type="float32")
    ct_enc = np.array(
        fw.model.encode(ctranslate2.StorageView.from_array(feats.numpy()), to_cpu=True)
    )
    assert np.abs(ct_enc - hf_enc).max() < 1e-3
    segs, _ = fw.transcribe(clip, beam_size=1, temperature=0, without_timestamps=True)
    assert hf_text == " ".join(s.text.strip() for s in segs)
    assert "pound key" in hf_text.lower()


def test_transformers_directory_transcribes_after_automatic_conversion(
    hf_dir, clip, tmp_path, monkeypatch
):
    import soundfile as sf

    import sbasr

    monkeypatch.setenv("SBASR_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "clip.wav"
    sf.write(path, clip, 16_000)
    converted = [s.text for s in sbasr.transcribe(path, model=str(hf_dir), compute_type="float32")]
    original = [s.text for s in sbasr.transcribe(path, model="tiny.en", compute_type="float32")]
    assert converted == original
    assert list((tmp_path / "cache" / "converted").iterdir())  # converted once, into the cache
