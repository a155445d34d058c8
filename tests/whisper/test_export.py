"""`sbasr export`: real weights round trip, and a LoRA adapter merged on export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli, speak

import sbasr
from sbasr.whisper.models import resolve_model, transformers_dir

SAY = "Enter your account number followed by the pound key."


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, speak(SAY), 16_000)
    return path


def _greedy(model: str, path) -> list[str]:
    greedy = sbasr.WhisperDecodeOptions(beam_size=1, temperature_increment=0.0)
    opts = sbasr.TranscribeOptions(decode=greedy)
    return [
        s.text for s in sbasr.transcribe(path, model=model, options=opts, compute_type="float32")
    ]


def test_round_trip_embedded_transformers_export_gives_the_same_transcript(clip_path, tmp_path):
    hf = transformers_dir("tiny.en")  # CTranslate2 -> transformers, cached
    out = run_cli("export", str(hf), "--quantization", "float32", "-o", str(tmp_path / "ct2"))
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "ct2" / "config.json").read_text())
    original = json.loads((Path(resolve_model("tiny.en")) / "config.json").read_text())
    for key in ("alignment_heads", "suppress_ids", "suppress_ids_begin"):
        assert config[key] == original[key], key
    assert (tmp_path / "ct2" / "tokenizer.json").exists()
    assert (tmp_path / "ct2" / "preprocessor_config.json").exists()
    assert _greedy(str(tmp_path / "ct2"), clip_path) == _greedy("tiny.en", clip_path)


def test_lora_adapter_is_merged_on_export(clip_path, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from sbasr.core.quiet import quiet_peft

    base = transformers_dir("tiny.en")
    model = WhisperForConditionalGeneration.from_pretrained(base)
    with quiet_peft():  # as sbasr itself wraps it
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
        lora = get_peft_model(model, config)
    torch.manual_seed(0)
    with torch.no_grad():  # a trained-looking adapter: B is zero at initialisation
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    adapter = tmp_path / "adapter"
    lora.save_pretrained(adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "tiny.en"  # the embedded model, by name
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))

    out = run_cli("export", str(adapter), "--quantization", "float32")
    assert out.returncode == 0, out.stderr
    ct2 = adapter / "ct2"
    assert "sbasr transcribe --model" in out.stdout and (ct2 / "model.bin").exists()
    # what faster-whisper reads beside the model, though the adapter carries neither
    assert (ct2 / "tokenizer.json").exists() and (ct2 / "preprocessor_config.json").exists()

    # The export decodes exactly as the merged transformers model does.
    merged = lora.merge_and_unload().eval()
    proc = WhisperProcessor.from_pretrained(base)
    audio, _ = sf.read(clip_path, dtype="float32")
    feats = proc.feature_extractor(audio, sampling_rate=16_000, return_tensors="pt")
    with torch.no_grad():
        tokens = merged.generate(feats.input_features, num_beams=1, do_sample=False)
    expected = proc.batch_decode(tokens, skip_special_tokens=True)[0].strip()

    import ctranslate2
    from faster_whisper import WhisperModel

    fw = WhisperModel(str(ct2), compute_type="float32")
    prompt = [fw.hf_tokenizer.token_to_id(t) for t in ("<|startoftranscript|>", "<|notimestamps|>")]
    result = fw.model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(feats.input_features.numpy())),
        [prompt],
        beam_size=1,
    )
    got = fw.hf_tokenizer.decode(result[0].sequences_ids[0]).strip()
    assert got == expected
    # the merge changed the weights, and the adapter directory now transcribes as a model
    plain = WhisperForConditionalGeneration.from_pretrained(base)
    q = "model.decoder.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], plain.state_dict()[q])
    assert _greedy(str(adapter), clip_path)


def test_export_refuses_what_it_cannot_convert(tmp_path):
    out = run_cli("export", str(tmp_path))
    assert out.returncode == 2 and "neither a transformers Whisper model" in out.stderr
    out = run_cli("export", resolve_model("tiny.en"))
    assert out.returncode == 2 and "already a CTranslate2 model" in out.stderr
