"""Speech encoders for the Speech-LLM, each run on every utterance's own length.

Whisper's encoder is normally fed 30 s of padded log-mel; here it sees only the real
frames (the positions it was trained with are simply cut short), which is what makes
short conversational turns cheap. Everything an utterance's output depends on is kept
inside that utterance, so a batch gives the same frames as decoding each alone:
padded mel frames and padded conv outputs are zeroed (what a lone utterance's conv
padding sees) and self-attention is masked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.errors import SbasrError
from ..io.files import check_safetensors

MEL_HOP = 160  # samples per Whisper log-mel frame at 16 kHz
_GPU_WIDTH_STEP = 200  # mel frames (2 s): the GPU batch widths' step


class WhisperSpeechEncoder(nn.Module):
    """The encoder of a transformers Whisper model, at 50 frames per second."""

    kind = "whisper"

    def __init__(self, encoder: nn.Module, feature_extractor) -> None:
        super().__init__()
        self.encoder = encoder
        self.feature_extractor = feature_extractor
        self.dim: int = encoder.config.d_model
        self.max_frames = encoder.config.max_source_positions  # 1500: 30 s
        # A plain tensor, not a buffer: Module.to(dtype) would round a buffer to bfloat16
        # with the model's weights, while the log-mel is computed in float32.
        self.mel_filters = torch.from_numpy(
            np.asarray(feature_extractor.mel_filters, dtype=np.float32)
        )
        # Input widths are rounded up to this many mel frames; None: 2 s steps on a GPU,
        # none on a CPU (see `features`).
        self.width_step: int | None = None

    @classmethod
    def load(cls, source: str) -> WhisperSpeechEncoder:
        from transformers import WhisperFeatureExtractor, WhisperModel

        from ..whisper.models import transformers_model

        path = transformers_model(source)
        model = WhisperModel.from_pretrained(path, attn_implementation="sdpa")
        return cls(model.get_encoder(), WhisperFeatureExtractor.from_pretrained(path))

    def log_mel(self, wave: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        """Whisper's log-mel of one utterance, normalised on its own. Computed here in
        torch on the encoder's device rather than by the feature extractor, whose call
        costs milliseconds of Python and a trip through numpy per utterance. `filters`:
        the mel filters on the wave's device."""
        fe = self.feature_extractor
        window = torch.hann_window(fe.n_fft, device=wave.device)
        stft = torch.stft(wave, fe.n_fft, fe.hop_length, window=window, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        log = torch.clamp(filters.T @ power, min=1e-10).log10()
        log = torch.maximum(log, log.max() - 8.0)
        return (log + 4.0) / 4.0

    def features(self, audio: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel of each utterance (not padded to 30 s), zero-padded to the longest:
        (batch, mels, frames) and mel frame counts."""
        device = self.encoder.conv1.weight.device
        filters = self.mel_filters.to(device)  # 64 kB: a copy per batch costs nothing
        limit = self.max_frames * 2 * MEL_HOP
        lengths = torch.tensor([max(1, min(len(w), limit) // MEL_HOP) for w in audio])
        # On a GPU, widths in steps (`_GPU_WIDTH_STEP`): cuDNN plans a convolution per input
        # shape, which can cost more than the encoder itself when every batch has a new
        # width. A CPU has no such plans, and there the padding is pure cost. The extra
        # frames are zeros and masked, so no utterance's output changes either way.
        step = self.width_step or (_GPU_WIDTH_STEP if device.type == "cuda" else 1)
        width = min(-(-int(lengths.max()) // step) * step, limit // MEL_HOP)
        out = torch.zeros(len(audio), filters.shape[1], width, device=device)
        for i, wave in enumerate(audio):
            wave = np.asarray(wave[:limit], dtype=np.float32)
            if len(wave) < 400:  # the STFT's reflect padding needs a few samples
                wave = np.pad(wave, (0, 400 - len(wave)))
            mel = self.log_mel(torch.from_numpy(wave).to(device), filters)
            out[i, :, : lengths[i]] = mel[:, : lengths[i]]
        return out, lengths

    def forward(self, audio: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, frames, dim) and each utterance's frame count."""
        enc = self.encoder
        device = enc.conv1.weight.device
        feats, mel_lengths = self.features(audio)
        feats = feats.to(device, enc.conv1.weight.dtype)
        mel_mask = frame_mask(mel_lengths, feats.shape[-1]).to(device)
        x = nn.functional.gelu(enc.conv1(feats)) * mel_mask[:, None, :]
        x = nn.functional.gelu(enc.conv2(x)).transpose(1, 2)  # stride 2: 50 frames/s
        lengths = (mel_lengths + 1) // 2
        mask = frame_mask(lengths, x.shape[1]).to(device)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        x = nn.functional.dropout(x, p=enc.dropout, training=self.training)
        bias = _attention_bias(mask, x.dtype)
        for layer in enc.layers:
            x = layer(x, bias)
            if isinstance(x, tuple):
                x = x[0]
        x = enc.layer_norm(x)
        return x * mask[..., None], lengths


class HubertSpeechEncoder(nn.Module):
    """A HuBERT-style encoder on raw 16 kHz audio (HubertModel, Wav2Vec2Model ...)."""

    kind = "hubert"

    def __init__(self, model: nn.Module, normalize: bool) -> None:
        super().__init__()
        self.model = model
        self.normalize = normalize
        self.dim: int = model.config.hidden_size
        # Group norm in the first conv layer spans the whole (padded) input, so such
        # models run one utterance at a time; layer-norm models take a masked batch.
        self.batchable = getattr(model.config, "feat_extract_norm", "group") == "layer"

    @classmethod
    def load(cls, source: str) -> HubertSpeechEncoder:
        from transformers import AutoConfig, AutoModel

        check_safetensors(source)
        try:
            config = AutoConfig.from_pretrained(source)
            model = AutoModel.from_pretrained(source)
        except (OSError, ValueError) as e:
            raise SbasrError(f"{source}: cannot load the second encoder: {e}") from None
        if config.model_type not in ("hubert", "wav2vec2", "wavlm", "data2vec-audio"):
            raise SbasrError(f"{source}: a {config.model_type} model is no HuBERT-style encoder")
        normalize = False
        pre = Path(source) / "preprocessor_config.json"
        if pre.is_file():
            import json

            normalize = bool(json.loads(pre.read_text("utf-8")).get("do_normalize", False))
        return cls(model, normalize)

    def _inputs(self, wave: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        if self.normalize:
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
        return x

    def forward(self, audio: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        weight = next(self.model.parameters())
        device, dtype = weight.device, weight.dtype
        lengths = torch.tensor(
            [int(self.model._get_feat_extract_output_lengths(max(len(w), 400))) for w in audio]
        )
        waves = [self._inputs(w if len(w) >= 400 else np.pad(w, (0, 400 - len(w)))) for w in audio]
        if self.batchable:
            width = max(len(w) for w in waves)
            batch = torch.zeros(len(waves), width)
            sample_mask = torch.zeros(len(waves), width, dtype=torch.long)
            for i, w in enumerate(waves):
                batch[i, : len(w)], sample_mask[i, : len(w)] = w, 1
            out = self.model(batch.to(device, dtype), attention_mask=sample_mask.to(device))
            x = out.last_hidden_state[:, : int(lengths.max())]
        else:
            rows = [self.model(w[None].to(device, dtype)).last_hidden_state[0] for w in waves]
            x = nn.utils.rnn.pad_sequence(rows, batch_first=True)
        mask = frame_mask(lengths, x.shape[1]).to(device)
        return x * mask[..., None], lengths


def load_encoder(source: str) -> nn.Module:
    """A Whisper encoder (embedded name, directory or hub id) or a HuBERT-style one,
    chosen by the model's config."""
    from ..whisper.models import EMBEDDED, is_transformers_whisper

    path = Path(source).expanduser()
    if source in EMBEDDED or (path.is_dir() and is_transformers_whisper(path)):
        return WhisperSpeechEncoder.load(source)
    if path.is_dir():
        return HubertSpeechEncoder.load(str(path))
    if "whisper" in source.lower():
        return WhisperSpeechEncoder.load(source)
    return HubertSpeechEncoder.load(source)  # a hub id such as utter-project/mHuBERT-147


def align_frames(
    x: torch.Tensor, x_len: torch.Tensor, y: torch.Tensor, y_len: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`y` brought to `x`'s frame count, utterance by utterance: a frame or two of
    difference (conv edge effects) is trimmed, other rates are interpolated. Returns
    the new `y` and the common lengths."""
    rows, lengths = [], []
    for i in range(x.shape[0]):
        n, m = int(x_len[i]), int(y_len[i])
        row = y[i, :m]
        if abs(n - m) <= 2:
            n = min(n, m)
            row = row[:n]
        else:
            row = nn.functional.interpolate(row.T[None], size=n, mode="linear")[0].T
        rows.append(row)
        lengths.append(n)
    out = y.new_zeros(y.shape[0], x.shape[1], y.shape[2])
    for i, row in enumerate(rows):
        out[i, : row.shape[0]] = row
    return out, torch.tensor(lengths, device=x_len.device)


def frame_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(batch, width), True on each utterance's real frames; on `lengths`' device."""
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


def _attention_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive (batch, 1, 1, keys) bias that hides padded keys."""
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    bias.masked_fill_(~mask, torch.finfo(dtype).min)
    return bias[:, None, None, :]
