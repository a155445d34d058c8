"""Whisper between CTranslate2 and transformers, both ways.

CTranslate2 -> transformers: the only Whisper weights installable offline are CTranslate2
models, while fine-tuning and the Speech-LLM's encoder need transformers ones.
CTranslate2 ships converters to its format only, so the reverse is written here from the
documented `model.bin` layout (version 6): little-endian; the spec name, revision, then
each variable as name, rank, shape, dtype and raw bytes; then aliases. Layer names follow
CTranslate2's WhisperSpec.

transformers -> CTranslate2: ctranslate2's own converter (`transformers_to_ct2`), keeping
the files faster-whisper reads beside the model.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np

from ..core.errors import SbasrError

# CTranslate2 -> transformers -----------------------------------------------------------

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(path: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 `model.bin`, aliases resolved, as float32 arrays
    (int8 weights dequantised with their scales)."""
    data = memoryview(Path(path).read_bytes())
    offset = 0

    def take(fmt: str) -> tuple:
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values

    def string() -> str:
        nonlocal offset
        (length,) = take("<H")
        text = bytes(data[offset : offset + length - 1]).decode("utf-8")
        offset += length
        return text

    (version,) = take("<I")
    if version < 5:
        raise SbasrError(f"{path}: CTranslate2 model format {version} is too old (need 5 or 6)")
    string()  # spec name
    take("<I")  # spec revision
    (count,) = take("<I")
    raw: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("<B")
        shape = take("<" + "I" * rank) if rank else ()
        (dtype,) = take("<B")
        (nbytes,) = take("<I")
        buf = data[offset : offset + nbytes]
        offset += nbytes
        if dtype == 5:  # bfloat16: the high half of a float32
            arr = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype in _DTYPES:
            arr = np.frombuffer(buf, _DTYPES[dtype])
        else:
            raise SbasrError(f"{path}: variable {name} has unknown dtype {dtype}")
        raw[name] = arr.reshape(shape)
    (aliases,) = take("<I")
    for _ in range(aliases):
        alias, target = string(), string()
        raw[alias] = raw[target]
    out = {}
    for name, arr in raw.items():
        if name.endswith("_scale"):
            continue
        scale = raw.get(f"{name}_scale")
        if arr.dtype == np.int8 and scale is not None:
            arr = arr.astype(np.float32) / np.asarray(scale, np.float32).reshape(-1, 1)
        out[name] = arr.astype(np.float32) if arr.dtype != np.float32 else arr.copy()
    return out


def _token_ids(tokenizer_json: Path) -> dict[str, int]:
    doc = json.loads(tokenizer_json.read_text("utf-8"))
    ids = {t["content"]: t["id"] for t in doc.get("added_tokens", [])}
    vocab = doc.get("model", {}).get("vocab", {})
    return {**vocab, **ids}


def ct2_to_transformers(ct2_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a transformers WhisperForConditionalGeneration (safetensors), its tokenizer,
    feature extractor and generation settings (languages, tasks, suppressed tokens,
    alignment heads) for the CTranslate2 Whisper model in `ct2_dir`."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    v = read_ct2(ct2_dir / "model.bin")
    cfg = json.loads((ct2_dir / "config.json").read_text("utf-8"))
    tokens = _token_ids(ct2_dir / "tokenizer.json")

    n_enc = _layers(v, "encoder")
    n_dec = _layers(v, "decoder")
    vocab, d_model = v["decoder/embeddings/weight"].shape
    eot = tokens["<|endoftext|>"]
    config = WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=v["encoder/conv1/weight"].shape[1],
        d_model=d_model,
        encoder_layers=n_enc,
        decoder_layers=n_dec,
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=tokens["<|startoftranscript|>"],
        begin_suppress_tokens=None,  # these live in the generation config only
        suppress_tokens=None,
    )
    sd = _state_dict(v, n_enc, n_dec)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.load_state_dict(
        {k: torch.from_numpy(a) for k, a in sd.items()}, strict=False, assign=True
    )
    model.tie_weights()
    missing = [n for n, p in model.named_parameters() if p.is_meta]
    if missing:
        raise SbasrError(f"{ct2_dir}: the conversion left weights unset: {missing[:3]}")

    inverse = {i: t for t, i in tokens.items()}
    # English-only models keep the language tokens in their vocabulary but must not be
    # prompted with one; Whisper tells them apart by vocabulary size.
    multilingual = vocab >= 51865
    lang_ids = (cfg.get("lang_ids") or []) if multilingual else []
    generation = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot,
        max_length=config.max_target_positions,
        suppress_tokens=cfg.get("suppress_ids"),
        begin_suppress_tokens=cfg.get("suppress_ids_begin"),
        alignment_heads=cfg.get("alignment_heads"),
        no_timestamps_token_id=tokens["<|notimestamps|>"],
        is_multilingual=multilingual,
        forced_decoder_ids=None,
        return_timestamps=False,
    )
    if multilingual:  # transformers detects a language whenever lang_to_id exists at all
        generation.lang_to_id = {inverse[i]: i for i in lang_ids}
        generation.task_to_id = {
            "transcribe": tokens["<|transcribe|>"],
            "translate": tokens["<|translate|>"],
        }
    model.generation_config = generation
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    shutil.copy2(ct2_dir / "tokenizer.json", out_dir / "tokenizer.json")
    tok = WhisperTokenizerFast(
        tokenizer_file=str(out_dir / "tokenizer.json"),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tok.save_pretrained(out_dir)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(out_dir)
    return out_dir


def _layers(v: dict, stack: str) -> int:
    found = (re.match(rf"{stack}/layer_(\d+)/", k) for k in v)
    return 1 + max(int(m.group(1)) for m in found if m)


def _split(w: np.ndarray, parts: int) -> list[np.ndarray]:
    return np.split(w, parts, axis=0)


def _attention(v: dict, src: str, dst: str, fused: int) -> dict[str, np.ndarray]:
    """q, k, v and out projections from CTranslate2's fused linears (k has no bias)."""
    out = {}
    if fused == 3:  # self-attention: linear_0 = q|k|v, linear_1 = out
        q, k, vv = _split(v[f"{src}/linear_0/weight"], 3)
        qb, _, vb = _split(v[f"{src}/linear_0/bias"], 3)
        proj, proj_b = v[f"{src}/linear_1/weight"], v[f"{src}/linear_1/bias"]
    else:  # cross-attention: linear_0 = q, linear_1 = k|v, linear_2 = out
        q, qb = v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]
        k, vv = _split(v[f"{src}/linear_1/weight"], 2)
        _, vb = _split(v[f"{src}/linear_1/bias"], 2)
        proj, proj_b = v[f"{src}/linear_2/weight"], v[f"{src}/linear_2/bias"]
    out.update(
        {
            f"{dst}.q_proj.weight": q,
            f"{dst}.q_proj.bias": qb,
            f"{dst}.k_proj.weight": k,
            f"{dst}.v_proj.weight": vv,
            f"{dst}.v_proj.bias": vb,
            f"{dst}.out_proj.weight": proj,
            f"{dst}.out_proj.bias": proj_b,
        }
    )
    return out


def _norm(v: dict, src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": v[f"{src}/gamma"], f"{dst}.bias": v[f"{src}/beta"]}


def _ffn(v: dict, src: str, dst: str) -> dict[str, np.ndarray]:
    return {
        f"{dst}.fc1.weight": v[f"{src}/linear_0/weight"],
        f"{dst}.fc1.bias": v[f"{src}/linear_0/bias"],
        f"{dst}.fc2.weight": v[f"{src}/linear_1/weight"],
        f"{dst}.fc2.bias": v[f"{src}/linear_1/bias"],
        **_norm(v, f"{src}/layer_norm", f"{dst}.final_layer_norm"),
    }


def _state_dict(v: dict, n_enc: int, n_dec: int) -> dict[str, np.ndarray]:
    sd = {
        "model.encoder.conv1.weight": v["encoder/conv1/weight"],
        "model.encoder.conv1.bias": v["encoder/conv1/bias"],
        "model.encoder.conv2.weight": v["encoder/conv2/weight"],
        "model.encoder.conv2.bias": v["encoder/conv2/bias"],
        "model.encoder.embed_positions.weight": v["encoder/position_encodings/encodings"],
        **_norm(v, "encoder/layer_norm", "model.encoder.layer_norm"),
        "model.decoder.embed_tokens.weight": v["decoder/embeddings/weight"],
        "model.decoder.embed_positions.weight": v["decoder/position_encodings/encodings"],
        **_norm(v, "decoder/layer_norm", "model.decoder.layer_norm"),
    }
    for i in range(n_enc):
        src, dst = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        sd.update(_attention(v, f"{src}/self_attention", f"{dst}.self_attn", 3))
        sd.update(_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm"))
        sd.update(_ffn(v, f"{src}/ffn", dst))
    for i in range(n_dec):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        sd.update(_attention(v, f"{src}/self_attention", f"{dst}.self_attn", 3))
        sd.update(_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm"))
        sd.update(_attention(v, f"{src}/attention", f"{dst}.encoder_attn", 2))
        sd.update(_norm(v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm"))
        sd.update(_ffn(v, f"{src}/ffn", dst))
    return {k: np.ascontiguousarray(a) for k, a in sd.items()}


# transformers -> CTranslate2 -----------------------------------------------------------


def transformers_to_ct2(source: Path, output: Path, quantization: str | None) -> None:
    """The ctranslate2 converter, keeping the tokenizer and feature settings that
    faster-whisper reads (it silently falls back to other defaults without them); a
    model saved without `preprocessor_config.json` or `tokenizer.json` gets them written
    from what it has."""
    from ctranslate2.converters import TransformersConverter

    from ..core.quiet import no_progress_bars

    copy = [f for f in ("tokenizer.json", "preprocessor_config.json") if (source / f).exists()]
    with no_progress_bars():  # also on a model's first use, converted into the cache
        TransformersConverter(str(source), copy_files=copy).convert(
            str(output), quantization=quantization, force=True
        )
    if not (output / "preprocessor_config.json").is_file():
        from transformers import WhisperFeatureExtractor

        features = WhisperFeatureExtractor.from_pretrained(source)
        features.to_json_file(str(output / "preprocessor_config.json"))
    if not (output / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
        tokenizer.backend_tokenizer.save(str(output / "tokenizer.json"))
