"""Shared helpers and fixtures: random transcripts with known kinds of errors, a CLI runner,
eSpeak NG speech (synthesised in-process), and tiny randomly initialised models (a Whisper,
HuBERTs, an LLM) that let training and decoding tests run in seconds on a CPU."""

from __future__ import annotations

import ctypes
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16_000

# Words of several scripts, with punctuation and case that the normalisers must handle.
VOCAB = {
    "en": ["the", "cat", "Sat", "on", "a", "mat,", "don't", "well-known", "42", "hello!"],
    "es": ["el", "gato", "está", "¿qué?", "sí", "niño", "año"],
    "ja": ["今日", "は", "良い", "天気", "です。", "東京", "iPhone"],
    "th": ["สวัสดี", "ครับ", "ค่ะ", "ขอบคุณ", "ไม่", "เป็นไร"],
    "ko": ["안녕하세요", "감사합니다", "네", "아니요"],
}
KEY_PREFIX = {
    "en": "English-American",
    "es": "Spanish",
    "ja": "Japanese",
    "th": "Thai",
    "ko": "Korean",
}


def random_pairs(n: int, seed: int = 0) -> list[tuple[str, str, str, str]]:
    """(id, language, reference, hypothesis): random edits, empties, identical pairs."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lang = rng.choice(list(VOCAB))
        words = VOCAB[lang][: rng.randint(1, len(VOCAB[lang]))]  # small vocabularies: ties
        ref = [rng.choice(words) for _ in range(rng.randint(0, 12))]
        hyp = list(ref)
        for _ in range(rng.randint(0, 4)):
            op, pos = rng.random(), rng.randrange(len(hyp) + 1)
            if op < 0.4 and pos < len(hyp):
                hyp[pos] = rng.choice(words)
            elif op < 0.7 and pos < len(hyp):
                del hyp[pos]
            else:
                hyp.insert(pos, rng.choice(words))
        if rng.random() < 0.05:
            hyp = []
        rows.append((f"{KEY_PREFIX[lang]}-{i:05d}-A-{i:06d}", lang, " ".join(ref), " ".join(hyp)))
    return rows


def write_keyed(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{k} {t}\n".replace(" \n", "\n") for k, t in rows), "utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sbasr", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture
def pairs() -> list[tuple[str, str, str, str]]:
    return random_pairs(3000)


SENTENCES = [
    "Kindly enter your account number.",
    "Thank you for calling.",
    "Your call is important to us.",
    "Goodbye.",
    "Press one for sales.",
    "All lines are busy.",
]


class _Espeak:
    """eSpeak NG through ctypes, from the espeakng-loader wheel (the test extra), which
    bundles the library and its voices: test speech needs no system package, and every
    machine speaks with the same version."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._chunks: list[np.ndarray] = []

        def collect(wav, count, _events):
            if count > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0  # go on synthesising

        self._callback = self._callback_type(collect)  # kept referenced while in use
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [self._callback_type]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]

        class Voice(ctypes.Structure):  # espeak_VOICE
            _fields_ = [
                ("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p),
            ]  # fmt: skip

        self._voice_type = Voice
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(Voice)]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        synchronous = 2  # AUDIO_OUTPUT_SYNCHRONOUS: samples come to the callback
        self.rate = lib.espeak_Initialize(
            synchronous, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if self.rate <= 0:
            raise RuntimeError("espeak-ng (espeakng-loader) failed to initialise")
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib

    def __call__(self, text: str, voice: str) -> np.ndarray:
        # by name, else by language, as the espeak-ng command's -v does
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            wanted = self._voice_type(None, voice.encode(), None, 0, 0, 0, 0, 0, None)
            if self._lib.espeak_SetVoiceByProperties(ctypes.byref(wanted)) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}")
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        characters, utf8 = 1, 1  # POS_CHARACTER, espeakCHARS_UTF8
        if self._lib.espeak_Synth(data, len(data), 0, characters, 0, utf8, None, None) != 0:
            raise RuntimeError(f"espeak-ng failed on {text!r}")
        self._lib.espeak_Synchronize()
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        # the closing pause the espeak-ng command writes after the last sentence
        pause = np.zeros(int(0.3 * self.rate), np.int16)
        return np.concatenate([samples, pause]).astype(np.float32) / 32768


_espeak: _Espeak | None = None


def speak(text: str, voice: str = "en-us") -> np.ndarray:
    """`text` spoken by eSpeak NG's `voice`, as float32 at 16 kHz."""
    global _espeak
    if _espeak is None:
        _espeak = _Espeak()
    data, rate = _espeak(text, voice), _espeak.rate
    # resample to 16 kHz by linear interpolation: enough for a test signal
    t = np.arange(0, len(data) / rate, 1 / SR)
    return np.interp(t, np.arange(len(data)) / rate, data).astype(np.float32)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Six spoken sentences, a train and a dev manifest."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for i, text in enumerate(SENTENCES):
        path = root / f"u{i}.wav"
        sf.write(path, speak(text), SR)
        rows.append({"id": f"u{i}", "audio": path.name, "text": text, "language": "en"})
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    (root / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[4:]))
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised two-layer Whisper with tiny.en's tokenizer and settings."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from sbasr.whisper.models import transformers_dir

    real = transformers_dir("tiny.en")
    config = WhisperConfig.from_pretrained(real)
    for key, value in dict(
        d_model=64,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
    ).items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig.from_pretrained(real)
    out = tmp_path_factory.mktemp("tiny") / "model"
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy2(real / name, out / name)
    return out


# A chat template of the instruct kind, in the tiny tokenizer's own special tokens.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|startoftranscript|>{{ m['role'] }}: {{ m['content'] }}"
    "<|endoftext|>{% endfor %}{% if add_generation_prompt %} assistant:{% endif %}"
)


@pytest.fixture(scope="session")
def parts(tmp_path_factory, tiny_model) -> dict[str, str]:
    """Paths of a tiny Whisper, two tiny HuBERTs (group and layer norm) and a tiny LLM."""
    import torch
    from transformers import AutoTokenizer, HubertConfig, HubertModel, LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("parts")
    torch.manual_seed(0)
    out = {"whisper": str(tiny_model)}
    for norm in ("group", "layer"):
        config = HubertConfig(
            hidden_size=24,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=48,
            conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            feat_extract_norm=norm,
            do_stable_layer_norm=norm == "layer",
        )
        HubertModel(config).save_pretrained(root / f"hubert-{norm}")
        out[f"hubert-{norm}"] = str(root / f"hubert-{norm}")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(root / "llm")
    tokenizer.chat_template = CHAT_TEMPLATE  # an instruct LLM's, as SmolLM2-Instruct has
    tokenizer.save_pretrained(root / "llm")
    out["llm"] = str(root / "llm")
    return out


def waves(*seconds: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * SR))).astype(np.float32) for s in seconds]


def build(parts, **kw):
    """A Speech-LLM of the tiny parts (fusion and projector freshly initialised)."""
    import torch

    from sbasr.speechllm.model import SpeechLLM, SpeechLLMConfig

    torch.manual_seed(1)
    kw.setdefault("hypothesis", False)  # the paper's plain model unless a test asks
    config = SpeechLLMConfig(encoder=parts["whisper"], llm=parts["llm"], fusion_heads=2, **kw)
    return SpeechLLM.build(config).eval()


@pytest.fixture(scope="session")
def noise_corpus(tmp_path_factory) -> Path:
    """Noise with transcripts, four to train on and two for dev: enough to drive the
    Trainer where what is learnt does not matter, without espeak-ng."""
    root = tmp_path_factory.mktemp("noise")
    rows = []
    for i, text in enumerate(SENTENCES):
        sf.write(root / f"n{i}.wav", waves(0.8 + 0.2 * i, seed=i)[0], SR)
        rows.append({"id": f"n{i}", "audio": f"n{i}.wav", "text": text, "language": "en"})
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    (root / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[4:]))
    return root
