"""The closed vocabularies sbasr's options draw from, in one torch-free place.

The CLI builds its choice lists from these and the library checks against them, so a
name is written once and `sbasr --help` never has to import torch to list it.
"""

from __future__ import annotations

ENGINES = ("whisper", "speechllm")
CHANNELS = ("mix", "split")
DEVICES = ("auto", "cpu", "cuda")
OUTPUT_FORMATS = ("txt", "srt", "vtt", "json", "tsv", "keyed", "all")

NORMALIZERS = ("mlcslm", "whisper", "none")
UNITS = ("word", "char", "mixed")

ARCHS = ("whisper", "speechllm")
METHODS = ("lora", "full")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
TRAIN_ENCODER = ("frozen", "lora", "full")
FUSIONS = ("concat", "uni-cross", "bi-cross", "gated-bi-cross", "gated-bi-cross-concat")
PROJECTORS = ("conv", "linear", "qformer")

EXPORT_FORMATS = ("ct2",)
QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "float16", "bfloat16", "float32")
