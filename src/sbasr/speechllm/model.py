"""The Speech-LLM: Whisper encoder (and optionally a second encoder in parallel, fused),
a projector, and a causal LLM prompted with the language, adapted with LoRA.

The LLM sees [bos] + prompt + speech embeddings + transcript + [eos], and only the
transcript and the end token are learned. A trained model is one directory: the
configuration (which says where the base encoders and LLM come from), the trained
weights in `model.safetensors` (fusion, projector, and encoder weights when trained),
and the LLM's LoRA in `llm_adapter/` in peft's own format.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.choices import TRAIN_ENCODER
from ..core.constants import SPEECHLLM_MAX_NEW_TOKENS
from ..core.errors import SbasrError
from ..core.quiet import quiet_peft
from .checkpoint import load_trained, read_trained, save_trained
from .config import WEIGHTS_NAME, SpeechLLMConfig, read_config
from .decode import RepetitionStop, greedy, transcribe
from .dropout import cheapen_lora_dropout
from .encoders import align_frames, frame_mask, load_encoder
from .fusion import Fusion
from .llm import load_llm
from .packing import pack, packed_attention
from .projectors import build_projector, match_scale
from .prompts import prompt_ids, speech_suffix
from .scoring import score
from .sources import resolve_bundled


class SpeechLLM(nn.Module):
    def __init__(self, config: SpeechLLMConfig, encoder, encoder2, llm, tokenizer) -> None:
        super().__init__()
        if config.train_encoder not in TRAIN_ENCODER:
            raise SbasrError(
                f"--train-encoder {config.train_encoder!r}: use one of {', '.join(TRAIN_ENCODER)}"
            )
        # The model's own copy: moving on to stage 2 changes it (llm_lora, stages_done),
        # and the caller's configuration must stay as it was given.
        self.spec = replace(
            config,
            lora_targets=tuple(config.lora_targets),
            encoder_lora_targets=tuple(config.encoder_lora_targets),
            stages_done=list(config.stages_done),
        )
        config = self.spec
        self.encoder, self.encoder2 = encoder, encoder2
        self.tokenizer = tokenizer
        self.merged = False  # the LLM's LoRA folded into its weights (`merge_lora`)
        dim = encoder.dim
        self.fusion = None
        if encoder2 is not None:
            try:
                self.fusion = Fusion(config.fusion, encoder.dim, encoder2.dim, config.fusion_heads)
            except ValueError as e:
                raise SbasrError(str(e)) from None
            dim = self.fusion.dim
        try:
            self.projector = build_projector(
                config.projector, dim, llm.config.hidden_size, config.downsample
            )
        except ValueError as e:
            raise SbasrError(str(e)) from None
        embeddings = llm.get_input_embeddings().weight.detach()
        match_scale(self.projector, float(embeddings.float().std()), dim)
        self.ctc = None
        if config.ctc_weight > 0:
            from .ctc import TokenCTC

            self.ctc = TokenCTC(llm.config.hidden_size, float(embeddings.float().std()))
        if config.train_encoder == "lora":
            from peft import LoraConfig, inject_adapter_in_model

            lora = LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=list(config.encoder_lora_targets),
            )
            for enc in self._encoders():
                inject_adapter_in_model(lora, enc)
                cheapen_lora_dropout(enc)
        self.llm = llm
        if config.llm_lora:
            self._attach_llm_lora()

    # building, stages, saving ------------------------------------------------------------

    @classmethod
    def build(cls, config: SpeechLLMConfig) -> SpeechLLM:
        """A fresh model from the configured sources (fusion and projector untrained)."""
        encoder = load_encoder(config.encoder)
        if encoder.kind != "whisper":
            raise SbasrError(f"{config.encoder}: the first encoder must be a Whisper model")
        encoder2 = load_encoder(config.encoder2) if config.encoder2 else None
        llm, tokenizer = load_llm(config.llm)
        return cls(config, encoder, encoder2, llm, tokenizer)

    @classmethod
    def load(cls, directory: str | Path) -> SpeechLLM:
        """A trained model from its directory; its files are read, a damaged one named, first."""
        directory = Path(directory)
        config = resolve_bundled(read_config(directory), directory)  # its own copies first
        state, adapter = read_trained(directory)
        model = cls.build(config)
        try:
            model.load_trained(state, adapter)
        except SbasrError as e:
            raise SbasrError(f"{directory}: {e}") from None
        except RuntimeError as e:  # shapes that do not fit: another model's weights
            reason = str(e).strip().splitlines()[-1].strip()
            raise SbasrError(
                f"{directory / WEIGHTS_NAME}: the weights do not fit the configuration ({reason})"
            ) from None
        return model.eval()

    def _encoders(self) -> list[nn.Module]:
        return [e for e in (self.encoder, self.encoder2) if e is not None]

    def _attach_llm_lora(self) -> None:
        from peft import LoraConfig, get_peft_model

        if getattr(self.llm, "peft_config", None):
            return
        cfg = self.spec
        present = {n.rsplit(".", 1)[-1] for n, _ in self.llm.named_modules()}
        targets = [t for t in cfg.lora_targets if t in present]
        if not targets:
            raise SbasrError(f"the LLM has none of the LoRA target modules {cfg.lora_targets}")
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
        with quiet_peft():
            self.llm = get_peft_model(self.llm, lora)
        cheapen_lora_dropout(self.llm)
        cfg.llm_lora = True  # the model's own copy: it now has, and saves, the adapter

    def set_stage(self, stage: int) -> None:
        """What trains: stage 1 the fusion and projector, stage 2 also the LLM's LoRA;
        the encoders as `train_encoder` says, in both."""
        if stage not in (1, 2):
            raise SbasrError(f"stage {stage}: use 1 or 2")
        if stage == 2:
            self._attach_llm_lora()
        self.requires_grad_(False)
        for name, param in self.named_parameters():
            param.requires_grad = self._is_trained(name)

    def _is_trained(self, name: str) -> bool:
        """Whether a parameter belongs to what this configuration trains (and saves)."""
        if name.startswith(("fusion.", "projector.", "ctc.")):
            return True
        if name.startswith(("encoder.", "encoder2.")):
            mode = self.spec.train_encoder
            return mode == "full" or (mode == "lora" and "lora_" in name)
        if name.startswith("llm."):
            return self.spec.llm_lora and "lora_" in name
        return False

    def _encoder_frozen(self) -> bool:
        return self.spec.train_encoder == "frozen"

    def train(self, mode: bool = True) -> SpeechLLM:
        super().train(mode)
        if self._encoder_frozen():  # no dropout, SpecAugment or layer drop in what is fixed
            for enc in self._encoders():
                enc.eval()
        return self

    def save(self, directory: str | Path) -> None:
        """Write the trained weights, the LLM's adapter and the configuration
        (`checkpoint.save_trained`)."""
        save_trained(self, directory)

    def merge_lora(self) -> SpeechLLM:
        """Fold the LLM's LoRA into its weights, for decoding: the same transcripts up to
        float rounding, without the adapter's extra matmuls at every step. The merged
        model cannot save or train its adapter, so `save` refuses it."""
        if getattr(self.llm, "peft_config", None):
            with quiet_peft():
                self.llm = self.llm.merge_and_unload()
            self.merged = True
        return self

    def mark_done(self, stage: int) -> None:
        """Record that `stage` has been trained; saved with the configuration."""
        self.spec.stages_done = sorted({*self.spec.stages_done, stage})

    def load_trained(self, state: dict, adapter: dict | None) -> None:
        """Put saved trained weights in place (`checkpoint.load_trained`)."""
        load_trained(self, state, adapter)

    def activation_checkpointing_enable(
        self,
        activation_checkpointing_kwargs: dict | None = None,
        every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        """The Trainer's hook (`--gradient-checkpointing`): checkpoint the LLM, and the
        encoders when they train."""
        self._checkpointing = True
        modules = [self.llm]
        if not self._encoder_frozen():
            for enc in self._encoders():
                modules.append(getattr(enc, "encoder", None) or getattr(enc, "model", None))
        for module in modules:
            if hasattr(module, "activation_checkpointing_enable"):
                module.activation_checkpointing_enable(
                    activation_checkpointing_kwargs, every_n_layers=every_n_layers, offload=offload
                )
            elif hasattr(module, "gradient_checkpointing_enable"):  # transformers before 5.x
                module.gradient_checkpointing_enable(activation_checkpointing_kwargs)

    gradient_checkpointing_enable = activation_checkpointing_enable

    @property
    def is_activation_checkpointing(self) -> bool:
        return getattr(self, "_checkpointing", False)

    # the forward pass -------------------------------------------------------------------

    def _device(self) -> torch.device:
        return next(self.projector.parameters()).device

    def encoder_outputs(self, audio: list[np.ndarray]) -> list[list[torch.Tensor]]:
        """Each utterance's encoder frames, one (frames, dim) tensor per encoder, the second
        already brought to the first's frame count: what `encode` takes as `frames`, and
        what training stores once when the encoders are frozen."""
        w, w_len, m = self._run_encoders(audio)
        return [
            [w[i, :n]] + ([m[i, :n]] if m is not None else []) for i, n in enumerate(w_len.tolist())
        ]

    def encoder_identity(self) -> str:
        """A fingerprint of the encoders (sources and weights): cached frames are reused
        only by a model whose encoders would compute the same ones."""
        from .cache import weights_fingerprint

        sources = [self.spec.encoder, self.spec.encoder2 or ""]
        return weights_fingerprint(self._encoders(), sources)

    def _run_encoders(
        self, audio: list[np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        grad = torch.is_grad_enabled() and not self._encoder_frozen()
        m = None
        with torch.set_grad_enabled(grad):
            w, w_len = self.encoder(audio)
            if self.encoder2 is not None:
                m, m_len = self.encoder2(audio)
                m, w_len = align_frames(w, w_len.to(w.device), m, m_len.to(w.device))
        return w, w_len, m

    def encode(
        self,
        audio: list[np.ndarray] | None = None,
        frames: list[list[torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Speech embeddings for the LLM, (batch, positions, llm_dim), and their counts,
        from audio or from encoder frames computed before (`encoder_outputs`)."""
        if frames is None:
            w, w_len, m = self._run_encoders(audio)
        else:
            pad = nn.utils.rnn.pad_sequence
            w_len = torch.tensor([f[0].shape[0] for f in frames])
            w = pad([f[0] for f in frames], batch_first=True)
            m = pad([f[1] for f in frames], batch_first=True) if len(frames[0]) > 1 else None
        device = self._device()
        dtype = next(self.projector.parameters()).dtype
        w_len = w_len.to(device)
        x = w.to(device, dtype)
        if self.fusion is not None:
            x = self.fusion(x, m.to(device, dtype), frame_mask(w_len, x.shape[1]))
        return self.projector(x, w_len)

    def prompt_ids(self, language: str | None, hypothesis: str | None = None) -> list[int]:
        """The prompt's token ids for `language` (`prompts.prompt_ids`)."""
        return prompt_ids(self.spec, self.tokenizer, language, hypothesis)

    def speech_suffix(self) -> list[int]:
        """Tokens between the speech and the transcript (`prompts.speech_suffix`)."""
        if "_suffix" not in self.__dict__:  # the template renders the same every call
            self.__dict__["_suffix"] = speech_suffix(self.spec, self.tokenizer)
        return self.__dict__["_suffix"]

    def target_ids(self, text: str) -> list[int]:
        """What the LLM learns to write: the transcript and the end token."""
        ids = self.tokenizer.encode(text.strip(), add_special_tokens=False)
        return [*ids, self.tokenizer.eos_token_id]

    def _sequences(
        self,
        audio: list[np.ndarray] | None,
        prompts: list[list[int]],
        targets: list[list[int]] | None,
        left_pad: bool,
        frames: list[list[torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Input embeddings, attention mask and labels, each row prompt + speech (+ text)."""
        speech, lengths = self.encode(audio, frames)
        return self._assemble(speech, lengths, prompts, targets, left_pad)

    def _assemble(
        self,
        speech: torch.Tensor,
        lengths: torch.Tensor,
        prompts: list[list[int]],
        targets: list[list[int]] | None,
        left_pad: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        embed = self.llm.get_input_embeddings()
        device = speech.device
        suffix = self.speech_suffix()
        rows, labels = [], []
        for i, prompt in enumerate(prompts):
            tail = targets[i] if targets is not None else []
            ids = torch.tensor(prompt + suffix + tail, dtype=torch.long, device=device)
            tokens = embed(ids)
            n = int(lengths[i])
            rows.append(
                torch.cat(
                    [tokens[: len(prompt)], speech[i, :n].to(tokens.dtype), tokens[len(prompt) :]]
                )
            )
            labels.append([-100] * (len(prompt) + n + len(suffix)) + tail)
        width = max(r.shape[0] for r in rows)
        batch = rows[0].new_zeros(len(rows), width, rows[0].shape[1])
        mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)
        label_t = torch.full((len(rows), width), -100, dtype=torch.long, device=device)
        for i, r in enumerate(rows):
            where = slice(width - r.shape[0], width) if left_pad else slice(0, r.shape[0])
            batch[i, where], mask[i, where] = r, 1
            label_t[i, where] = torch.tensor(labels[i], device=device)
        return batch, mask, (label_t if targets is not None else None)

    def forward(
        self,
        prompt_ids: list[list[int]],
        labels: torch.Tensor,
        audio: list[np.ndarray] | None = None,
        frames: list[list[torch.Tensor]] | None = None,
    ) -> dict:
        """The loss on each utterance's transcript and end token (the Trainer's call), from
        audio or from cached encoder frames."""
        targets = [row[row != -100].tolist() for row in labels]
        speech, lengths = self.encode(audio, frames)
        embeds, mask, label_t = self._assemble(speech, lengths, prompt_ids, targets, False)
        loss = self._text_loss(embeds, mask, label_t)
        if self.ctc is not None:  # the transcript without its end token, per position
            table = self.llm.get_input_embeddings().weight.detach()
            text = [t[:-1] for t in targets]
            loss = loss + self.spec.ctc_weight * self.ctc(speech, lengths, text, table)
        return {"loss": loss}

    def _text_loss(
        self, embeds: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The LLM's next-token loss: what its own `labels=` computes (shifted, mean over
        labelled tokens)."""
        return -self._label_log_probs(embeds, mask, labels)[0].mean()

    def _label_log_probs(
        self, embeds: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The log-probability of each labelled token, and the row it is in.

        The output layer is applied only where a label is (the transcript is a small part
        of each row), and the rows run packed, without their padding (`packing`)."""
        causal = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        body = getattr(causal, causal.base_model_prefix)
        if self.is_activation_checkpointing and torch.is_grad_enabled():
            # checkpointing runs each layer again in the backward pass, after the switch
            # of attention is undone: the padded rows then, their real positions kept
            positions, packing = pack(mask, "")
            hidden = packing.take(body(inputs_embeds=embeds, attention_mask=mask).last_hidden_state)
        else:
            with packed_attention(body) as inner:
                positions, packing = pack(mask, inner)
                hidden = body(
                    inputs_embeds=packing.take(embeds)[None],
                    attention_mask=mask.new_ones(1, 1, 1, 1),  # 4-D: taken as is, unused
                    position_ids=positions,
                    sbasr_packing=packing,
                ).last_hidden_state[0]
        # each position predicts the next; a row's first is never labelled (it is the
        # prompt), so no row learns from the one before it
        target = labels[mask.bool()][1:]
        target = target.masked_fill(positions[0, 1:] == 0, -100)
        keep = target != -100
        logits = self._output_layer(causal.get_output_embeddings(), hidden[:-1][keep]).float()
        picked = logits.log_softmax(-1).gather(1, target[keep][:, None]).squeeze(1)
        return picked, (packing.real[1:] // packing.width)[keep]

    def _output_layer(self, head: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """`head(hidden)`; under autocast a frozen head's weight is cast once and kept
        rather than cast again each step (autocast keeps no casts of frozen weights between
        steps). The same numbers either way."""
        device = hidden.device.type
        weight = getattr(head, "weight", None)
        if (
            not isinstance(head, nn.Linear)
            or head.bias is not None
            or weight.requires_grad
            or not torch.is_autocast_enabled(device)
        ):
            self._head_cast = None
            return head(hidden)
        dtype = torch.get_autocast_dtype(device)
        key = (weight.data_ptr(), weight._version, dtype)
        if getattr(self, "_head_cast", None) is None or self._head_cast[0] != key:
            self._head_cast = (key, weight.detach().to(dtype))
        return nn.functional.linear(hidden.to(dtype), self._head_cast[1])

    def score(
        self,
        audio: list[np.ndarray],
        languages: list[str],
        texts: list[str],
        hypotheses: list[str] | None = None,
    ) -> list[float]:
        """The log-probability of each text given its utterance (`scoring.score`)."""
        return score(self, audio, languages, texts, hypotheses)

    def transcribe(
        self,
        audio: list[np.ndarray],
        languages: list[str],
        max_new_tokens: int = SPEECHLLM_MAX_NEW_TOKENS,
        beam_size: int = 1,
        hypotheses: list[str] | None = None,
    ) -> list[str]:
        """Transcripts of a batch of utterances (`decode.transcribe`)."""
        return transcribe(self, audio, languages, max_new_tokens, beam_size, hypotheses)

    def _greedy(
        self, embeds: torch.Tensor, mask: torch.Tensor, budgets: list[int], stop: RepetitionStop
    ) -> list[list[int]]:
        return greedy(self, embeds, mask, budgets, stop)
