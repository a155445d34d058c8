"""The Speech-LLM on a GPU, with no model files: random weights at realistic sizes.

1. bf16 on CUDA, two encoders, two fusions: a batch vs each utterance alone.
2. `finetune_speechllm` (both stages, the Trainer, checkpoint averaging) on CUDA.
3. Speed at Whisper-base / SmolLM2-135M sizes: the encoder on true lengths vs padded to
   30 s; batched (8) vs one-at-a-time decoding, every utterance writing the same 40 tokens.
4. Training throughput of stage 2 (projector + LLM LoRA) under bf16 autocast.

Random weights need no model files carried to the GPU machine, only a tokenizer directory
(tiny.en's: 3.5 MB). The real models go there in parts: benchmarks/speechllm_gpu_real.py.

    python benchmarks/speechllm_gpu.py OUT_DIR [TOKENIZER_DIR]   # DEV=cpu to try it here
    ONLY_SPEED=1 python benchmarks/speechllm_gpu.py OUT_DIR       # parts 3 and 4
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "src")
from transformers import (
    HubertConfig,
    HubertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
)

import sbasr.training.data as data
import sbasr.training.dataset as training
from sbasr.speechllm.model import SpeechLLM, SpeechLLMConfig

OUT = Path(sys.argv[1])
DEV = os.environ.get("DEV", "cuda")
sync = torch.cuda.synchronize if DEV == "cuda" else (lambda: None)
work = Path("/tmp/gpucheck")
work.mkdir(exist_ok=True)
tok = PreTrainedTokenizerFast.from_pretrained(sys.argv[2] if len(sys.argv) > 2 else ".gpu/tok")
print(torch.cuda.get_device_name() if DEV == "cuda" else "cpu", torch.__version__, flush=True)
results = {}


def parts(d_model, layers, llm_hidden, llm_layers, heads, name):
    torch.manual_seed(0)
    wc = WhisperConfig(
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=1,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * d_model,
        decoder_ffn_dim=4 * d_model,
        vocab_size=len(tok),
        num_mel_bins=80,
    )
    w = work / f"{name}-whisper"
    WhisperModel(wc).save_pretrained(w)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(w)
    hc = HubertConfig(
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    h = work / f"{name}-hubert"
    HubertModel(hc).save_pretrained(h)
    lc = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=llm_hidden,
        intermediate_size=int(llm_hidden * 8 / 3) // 64 * 64,
        num_hidden_layers=llm_layers,
        num_attention_heads=9 if llm_hidden == 576 else 2,
        num_key_value_heads=3 if llm_hidden == 576 else 1,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    llm = work / f"{name}-llm"
    LlamaForCausalLM(lc).save_pretrained(llm)
    tok.save_pretrained(llm)
    return str(w), str(h), str(llm)


rng = np.random.default_rng(0)
audio = [
    (0.1 * rng.standard_normal(int(16000 * s))).astype(np.float32)
    for s in rng.uniform(1.0, 8.0, 64)
]

fusions = () if os.environ.get("ONLY_SPEED") else ("concat", "gated-bi-cross-concat")
# 1. correctness on CUDA, bf16, two encoders, every fusion
w, h, llm = parts(64, 2, 64, 2, 2, "tiny")
for fusion in fusions:
    cfg = SpeechLLMConfig(
        encoder=w, encoder2=h, fusion=fusion, llm=llm, fusion_heads=2, hypothesis=False
    )
    m = SpeechLLM.build(cfg)
    m.set_stage(2)
    m = m.to(DEV, torch.bfloat16).eval()
    with torch.no_grad():
        e, n = m.encode(audio[:4])
        diffs = []
        for i in range(4):
            e1, n1 = m.encode([audio[i]])
            diffs.append((e1[0, : n1[0]].float() - e[i, : n[i]].float()).abs().max().item())
    b = m.transcribe(audio[:4], ["en", "fr", "de", "es"], 8)
    s = [m.transcribe([a], [lang], 8)[0] for a, lang in zip(audio[:4], ["en", "fr", "de", "es"])]
    results[f"cuda_bf16_{fusion}"] = {
        "max_diff_batch_vs_alone": max(diffs),
        "same_transcripts": sum(x == y for x, y in zip(b, s)),
    }
    print(fusion, results[f"cuda_bf16_{fusion}"], flush=True)

if not os.environ.get("ONLY_SPEED"):
    # 2. training on CUDA under the Trainer (bf16 auto), both stages, resume-able output
    arrays = {}
    rows = []
    for i, a in enumerate(audio[:24]):
        arrays[f"u{i}"] = a
        rows.append(
            {
                "id": f"u{i}",
                "audio": str(work / f"u{i}.npy"),
                "text": f"number {i} please",
                "language": "en",
            }
        )
        np.save(work / f"u{i}.npy", a)
    (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:20]))
    (work / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[20:]))
    data._probe = lambda p: len(np.load(p)) / 16000
    training.load_example_audio = lambda ex: np.load(ex.audio)
    from sbasr.training.speechllm import finetune_speechllm
    from sbasr.training.speechllm_options import SpeechLLMOptions

    opts = SpeechLLMOptions(
        train=str(work / "train.jsonl"),
        dev=str(work / "dev.jsonl"),
        output_dir=str(work / "run"),
        model=w,
        encoder2=h,
        llm=llm,
        fusion="bi-cross",
        max_steps=30,
        eval_steps=10,
        warmup_steps=2,
        learning_rate=1e-3,
        batch_seconds=20,
        logging_steps=5,
        average_best=2,
        batch_size=8,  # at most 8 utterances a batch, as when the API's default was 8
    )
    t0 = time.perf_counter()
    finetune_speechllm(opts, echo=lambda m: print(m, flush=True))
    state = json.loads((work / "run/stage2/trainer_state.json").read_text())
    losses = [x["loss"] for x in state["log_history"] if "loss" in x]
    results["train_cuda"] = {
        "seconds": time.perf_counter() - t0,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }
    print(results["train_cuda"], flush=True)

if os.environ.get("SKIP_SPEED"):
    sys.exit(0)
# 3. speed at realistic sizes: base-size encoder, SmolLM2-size LLM, random weights
w, h, llm = parts(512, 6, 576, 30, 8, "real")
m = (
    SpeechLLM.build(SpeechLLMConfig(encoder=w, llm=llm, hypothesis=False))
    .to(DEV, torch.bfloat16)
    .eval()
)
gen = m.llm.generate


def forced(*args, **kw):  # random weights: make every utterance write the same 40 tokens
    kw["min_new_tokens"] = kw["max_new_tokens"]
    return gen(*args, **kw)


m.llm.generate = forced
audio.sort(key=len)
chunks = [audio[i : i + 8] for i in range(0, len(audio), 8)]


def timed(fn):
    sync()
    t0 = time.perf_counter()
    r = fn()
    sync()
    return time.perf_counter() - t0, r


class Padded(torch.nn.Module):
    def __init__(self, enc):
        super().__init__()
        self.enc, self.dim, self.kind = enc, enc.dim, "whisper"

    def forward(self, a):
        return self.call(a)

    def call(self, a):
        feats = self.enc.feature_extractor(a, sampling_rate=16000, return_tensors="pt")
        x = feats.input_features.to(DEV, torch.bfloat16)
        out = self.enc.encoder(x).last_hidden_state
        return out, torch.tensor([min(1500, (len(y) // 160 + 1) // 2) for y in a])


with torch.inference_mode():
    for _ in range(2):  # warm-up
        m.transcribe(chunks[0], ["en"] * 8, 40)
    t_true, _ = timed(lambda: [m.encoder(c) for c in chunks])
    pe = Padded(m.encoder)
    t_pad, _ = timed(lambda: [pe(c) for c in chunks])
    t_b, _ = timed(lambda: [m.transcribe(c, ["en"] * len(c), 40) for c in chunks])
    t_s, _ = timed(lambda: [m.transcribe([a], ["en"], 40) for a in audio])
    real = m.encoder
    m.encoder = pe
    t_base, _ = timed(lambda: [m.transcribe([a], ["en"], 40) for a in audio])
    m.encoder = real
results["speed_h"] = {
    "encoder_true": t_true,
    "encoder_padded": t_pad,
    "batched": t_b,
    "single": t_s,
    "padded_single": t_base,
    "encoder_ratio": t_pad / t_true,
    "batch_ratio": t_s / t_b,
    "overall_ratio": t_base / t_b,
}
print(results["speed_h"], flush=True)
OUT.mkdir(parents=True, exist_ok=True)
(OUT / "gpu.json").write_text(json.dumps(results, indent=2))

# 4. training throughput at realistic size: stage 2 (projector + LLM LoRA), bf16 autocast
m2 = SpeechLLM.build(SpeechLLMConfig(encoder=w, llm=llm, hypothesis=False))
m2.set_stage(2)
m2 = m2.to(DEV).train()
opt = torch.optim.AdamW([p for p in m2.parameters() if p.requires_grad], lr=1e-4)
batch = [a for a in audio if 3.0 < len(a) / 16000 < 4.5][:8]
prompt = m2.prompt_ids("en")
target = m2.target_ids("please enter your account number followed by the pound key")
labels = torch.full((len(batch), len(target)), -100)
labels[:, :] = torch.tensor(target)


def step():
    with torch.autocast(DEV, dtype=torch.bfloat16):
        loss = m2(batch, [prompt] * len(batch), labels)["loss"]
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss.item()


for _ in range(3):
    step()
t_train, _ = timed(lambda: [step() for _ in range(20)])
secs = sum(len(a) for a in batch) / 16000
results["train_h"] = {
    "seconds_per_step": t_train / 20,
    "audio_seconds_per_step": secs,
    "utterances_per_second": 20 * len(batch) / t_train,
}
print(results["train_h"], flush=True)
(OUT / "gpu.json").write_text(json.dumps(results, indent=2))
