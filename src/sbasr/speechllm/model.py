"""The Speech-LLM: Whisper encoder (and optionally a second encoder in parallel, fused),
a projector, and a causal LLM prompted with the language, adapted with LoRA.

The LLM sees [bos] + prompt + speech embeddings + transcript + [eos], and only the
transcript and the end token are learned. A trained model is one directory: the
configuration (which says where the base encoders and LLM come from), the trained
weights in `model.safetensors` (fusion, projector, and encoder weights when trained),
and the LLM's LoRA in `llm_adapter/` in peft's own format.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..choices import TRAIN_ENCODER
from ..errors import SbasrError
from ..io.audio import SAMPLE_RATE, distinct_clips
from ..io.files import write_atomic
from ..io.languages import name as language_name
from ..training.quiet import quiet_peft
from .config import ADAPTER_DIR, CONFIG_NAME, WEIGHTS_NAME, SpeechLLMConfig, read_config
from .dropout import cheapen_lora_dropout
from .encoders import align_frames, frame_mask, load_encoder
from .fusion import Fusion
from .llm import load_llm
from .packing import pack, packed_attention
from .projectors import build_projector, match_scale


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
        """A trained model from its directory. Its files are read (and a damaged one is an
        error naming it) before the encoders and the LLM are built."""
        from .sources import resolve_bundled

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
        from safetensors.torch import save_file

        if self.merged:
            raise SbasrError("a model with its LoRA merged (for decoding) cannot be saved")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            n: p.detach().contiguous().cpu()
            for n, p in self.named_parameters()
            if self._is_trained(n) and not n.startswith("llm.")
        }
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
        if self.spec.llm_lora:
            self.llm.save_pretrained(str(directory / ADAPTER_DIR))
        text = json.dumps(self.spec.to_dict(), indent=2) + "\n"
        write_atomic(directory / CONFIG_NAME, text)

    def merge_lora(self) -> SpeechLLM:
        """Fold the LLM's LoRA into its weights, for decoding: the same transcripts (up to
        float rounding) without the adapter's two extra matmuls and Python calls on every
        projection of every step, which made greedy decoding 1.4x slower on a CPU. The
        merged model can no longer save or train its adapter, so `save` refuses it."""
        if getattr(self.llm, "peft_config", None):
            with quiet_peft():
                self.llm = self.llm.merge_and_unload()
            self.merged = True
        return self

    def mark_done(self, stage: int) -> None:
        """Record that `stage` has been trained; saved with the configuration."""
        self.spec.stages_done = sorted({*self.spec.stages_done, stage})

    def load_trained(self, state: dict, adapter: dict | None) -> None:
        """Put saved trained weights in place; anything missing or left over is an error.
        An LLM adapter needs the model in stage 2 already (`set_stage(2)`, or a
        configuration saved after it): loading never changes what the model is made of."""
        expected = {
            n
            for n, _ in self.named_parameters()
            if self._is_trained(n) and not n.startswith("llm.")
        }
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise SbasrError(
                f"saved weights do not fit the configuration (missing "
                f"{missing[:3]}, unexpected {extra[:3]})"
            )
        if (adapter is not None) != self.spec.llm_lora:
            which = "an LLM adapter, the model none" if adapter else "no LLM adapter, the model one"
            raise SbasrError(f"saved weights do not fit the configuration ({which})")
        self.load_state_dict(state, strict=False)
        if adapter is not None:
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.llm, adapter)

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
        """[bos] + the prompt with the language's English name (and, for a
        hypothesis-conditioned model, Whisper's transcript)."""
        if not language:
            raise SbasrError("the Speech-LLM is prompted with the language; none was given")
        if self.spec.hypothesis:
            text = self.spec.hypothesis_prompt.format(
                language=language_name(language), hypothesis=(hypothesis or "").strip()
            )
        else:
            text = self.spec.prompt.format(language=language_name(language))
        if self.spec.chat_template:
            return self._chat_parts(text)[0]
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        return bos + self.tokenizer.encode(text, add_special_tokens=False)

    def speech_suffix(self) -> list[int]:
        """Tokens between the speech and the transcript: the end of the chat template's
        user turn and the start of the assistant's; none for a plain prompt."""
        if not self.spec.chat_template:
            return []
        if "_suffix" not in self.__dict__:  # the template renders the same every call
            self.__dict__["_suffix"] = self._chat_parts("")[1]
        return self.__dict__["_suffix"]

    def _chat_parts(self, text: str) -> tuple[list[int], list[int]]:
        """The chat template around `text` + speech, split at the speech: (before, after)."""
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            raise SbasrError(f"{self.spec.llm}: the LLM's tokenizer has no chat template")
        mark = "\x00speech\x00"
        turn = [{"role": "user", "content": text + mark}]
        rendered = tok.apply_chat_template(turn, add_generation_prompt=True, tokenize=False)
        before, after = rendered.split(mark)
        encode = lambda part: tok.encode(part, add_special_tokens=False)  # noqa: E731
        return encode(before), encode(after)

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

        The output layer is applied only where a label is: it spans every position and a
        49k-word vocabulary, while only the transcript (a fifth of a row) is learnt, and
        on a CPU that layer was a fifth of a training step. The rows run packed, without
        their padding (`packing`): a fifth of a batch's positions are padding."""
        causal = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        body = getattr(causal, causal.base_model_prefix)
        if self.is_activation_checkpointing and torch.is_grad_enabled():
            # checkpointing runs each layer again in the backward pass, after the switch
            # of attention is undone: the padded rows then, their real positions kept
            positions, packing = pack(mask, "")
            hidden = packing.take(body(inputs_embeds=embeds, attention_mask=mask).last_hidden_state)
        else:
            with packed_attention(body.config) as inner:
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
        """`head(hidden)`; under autocast a frozen head's weight is cast once and kept, not
        cast again each step (autocast keeps no casts of frozen weights between steps):
        the 49k-word table shared with the input embeddings, a twentieth of a bf16 CPU
        step. The same numbers either way."""
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

    @torch.inference_mode()
    def score(
        self,
        audio: list[np.ndarray],
        languages: list[str],
        texts: list[str],
        hypotheses: list[str] | None = None,
    ) -> list[float]:
        """The LLM's log-probability of each text and its end token, given its utterance
        and prompt: how much it prefers one transcript to another (a correction to the
        hypothesis it was given, say)."""
        hyps = hypotheses or [None] * len(audio)
        prompts = [self.prompt_ids(lang, h) for lang, h in zip(languages, hyps)]
        targets = [self.target_ids(t) for t in texts]
        unique, index = distinct_clips(audio)  # several texts of one clip: encoded once
        speech, lengths = self.encode(unique)
        where = torch.tensor(index, device=speech.device)
        embeds, mask, labels = self._assemble(
            speech[where], lengths[where], prompts, targets, left_pad=False
        )
        picked, rows = self._label_log_probs(embeds, mask, labels)
        totals = torch.zeros(len(texts), device=picked.device).index_add_(0, rows, picked)
        return totals.tolist()

    @torch.inference_mode()
    def transcribe(
        self,
        audio: list[np.ndarray],
        languages: list[str],
        max_new_tokens: int = 600,
        beam_size: int = 1,
        hypotheses: list[str] | None = None,
    ) -> list[str]:
        """Greedy (or beam) transcripts of a batch of utterances, with the KV cache.

        Each row writes at most `max_new_tokens`, and no more than its own utterance can
        hold (`token_budget`); a row stops early when it loops (`RepetitionStop`), and
        the loop is cut to one copy. Both are per row, so that a batch runs no longer
        than its slowest row alone would, and a row's text does not depend on its batch:
        with one budget for the batch, every row of a batch of short clips wrote up to
        the longest clip's budget, and one row's loop kept the batch running."""
        from transformers import StoppingCriteriaList

        from ..asr.postprocess import collapse_repetitions

        hyps = hypotheses or [None] * len(audio)
        prompts = [self.prompt_ids(lang, h) for lang, h in zip(languages, hyps)]
        embeds, mask, _ = self._sequences(audio, prompts, None, left_pad=True)
        tok = self.tokenizer
        budgets = [min(max_new_tokens, token_budget(len(a) / SAMPLE_RATE)) for a in audio]
        stop = RepetitionStop()
        if beam_size == 1:
            out = self._greedy(embeds, mask, budgets, stop)
        else:
            out = self.llm.generate(
                inputs_embeds=embeds,
                attention_mask=mask,
                max_new_tokens=max(budgets),
                num_beams=beam_size,
                do_sample=False,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
                use_cache=True,
                stopping_criteria=StoppingCriteriaList([stop, RowBudget(budgets)]),
            )
        texts = tok.batch_decode(out, skip_special_tokens=True)
        return [
            collapse_repetitions(t, max_n=stop.longest, min_repeats=stop.repeats) for t in texts
        ]

    def _greedy(
        self, embeds: torch.Tensor, mask: torch.Tensor, budgets: list[int], stop: RepetitionStop
    ) -> list[list[int]]:
        """Greedy decoding that drops each row from the batch as soon as it ends (its end
        token, its budget or a loop), the KV cache's row with it.

        transformers' `generate` steps every row until the last one ends: on a CPU a
        batch whose one clip rambles to its budget cost eight rows a step all along.
        Argmax of the same logits as `generate` (no logits processors, as it has none
        for a greedy search here); the tests check the texts are the same."""
        eos = self.tokenizer.eos_token_id
        causal = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        params = inspect.signature(causal.forward).parameters
        # transformers 5 renamed past_key_values to cache, 4.5x num_logits_to_keep
        cache_arg = "cache" if "cache" in params else "past_key_values"
        keep = {k: 1 for k in ("logits_to_keep", "num_logits_to_keep") if k in params}
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count real tokens
        out = causal(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **keep,
        )
        following = positions[:, -1:] + 1
        written: list[list[int]] = [[] for _ in budgets]
        rows = list(range(len(budgets)))  # the utterance of each row still in the batch
        while rows:
            tokens = out.logits[:, -1].argmax(-1).tolist()
            going = []
            for k, (row, token) in enumerate(zip(rows, tokens)):
                if token == eos:
                    continue
                written[row].append(token)
                if len(written[row]) < budgets[row] and not stop.loops(written[row]):
                    going.append(k)
            if not going:
                break
            cache = getattr(out, cache_arg)
            if len(going) < len(rows):
                index = torch.tensor(going, device=mask.device)
                cache.batch_select_indices(index)
                mask, following = mask[index], following[index]
                rows, tokens = [rows[k] for k in going], [tokens[k] for k in going]
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            out = causal(
                input_ids=torch.tensor(tokens, device=mask.device)[:, None],
                attention_mask=mask,
                position_ids=following,
                use_cache=True,
                **{cache_arg: cache},
            )
            following = following + 1
        return written


def token_budget(seconds: float) -> int:
    """The most tokens `seconds` of speech can need: fast speech is about 4 words a
    second, and a byte-level tokenizer may spend 5 tokens on a word of a script it saw
    little of (Russian, Thai), so 20 a second and a floor of 16 for short clips. An
    undertrained model that rambles stops there instead of at the global cap."""
    return max(16, int(20 * seconds) + 1)


class RepetitionStop:
    """Stops a row whose last n tokens (n <= 32: a phrase or a whole sentence) were just
    written 4 times in a row: the decoder's loop, which would otherwise run to the token
    limit. What it wrote is kept, and `collapse_repetitions` then keeps one copy."""

    def __init__(self, repeats: int = 4, longest: int = 32) -> None:
        self.repeats, self.longest = repeats, longest

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        rows = input_ids.tolist()
        return torch.tensor(
            [self.loops(row) for row in rows], dtype=torch.bool, device=input_ids.device
        )

    def loops(self, row: list[int]) -> bool:
        for n in range(1, self.longest + 1):
            if len(row) < n * self.repeats:
                break
            tail = row[-n:]
            if all(row[-(k + 1) * n : len(row) - k * n] == tail for k in range(1, self.repeats)):
                return True
        return False


class RowBudget:
    """Stops each row at its own number of new tokens (rows of a beam search share their
    utterance's), so that a short clip batched with a long one writes no more than it
    would alone."""

    def __init__(self, budgets: list[int]) -> None:
        self.budgets = budgets

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        # Generating from embeddings, input_ids holds the new tokens only; beam search
        # passes its rows utterance by utterance, a fixed number each.
        rows, written = input_ids.shape
        budgets = torch.tensor(self.budgets, device=input_ids.device)
        return budgets.repeat_interleave(rows // len(self.budgets)) <= written


def read_trained(directory: str | Path) -> tuple[dict, dict | None]:
    """The trained weights saved in `directory`: (model.safetensors, LLM adapter or None);
    a truncated, empty or foreign file is an SbasrError naming it."""
    directory = Path(directory)
    if not (directory / WEIGHTS_NAME).is_file():
        raise SbasrError(f"{directory}: no {WEIGHTS_NAME}")
    state = _load_weights(directory / WEIGHTS_NAME)
    adapter_file = directory / ADAPTER_DIR / "adapter_model.safetensors"
    adapter = _load_weights(adapter_file) if adapter_file.is_file() else None
    return state, adapter


def _load_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # SafetensorError (bad header), OSError, a foreign format
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SbasrError(
            f"{path}: cannot read the weights ({reason}); the file is damaged or incomplete: "
            "copy it again from the training run"
        ) from None


def average_trained(directories: list[Path]) -> tuple[dict, dict | None]:
    """The element-wise mean of several checkpoints' trained weights."""
    loaded = [read_trained(d) for d in directories]

    def mean(dicts: list[dict]) -> dict:
        return {
            k: torch.stack([d[k].float() for d in dicts]).mean(0).to(dicts[0][k].dtype)
            for k in dicts[0]
        }

    state = mean([s for s, _ in loaded])
    adapters = [a for _, a in loaded]
    if any(a is None for a in adapters):
        return state, None
    return state, mean(adapters)  # type: ignore[arg-type]
