"""Training the Speech-LLM in the paper's two stages, under the transformers Trainer.

Stage 1 trains the fusion and the projector with the encoders and the LLM frozen;
stage 2 starts from stage 1's weights and adds LoRA on the LLM. Batches hold up to a
number of seconds of audio (similar lengths together, so little is padding). Dev loss
picks the best checkpoint, and `average_best` averages the N best. Each stage trains in
OUT/stageN (checkpoints, logs); the final model is written to OUT itself, which
`sbasr transcribe --engine speechllm --model OUT` loads.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from ..core.constants import SPEECHLLM_CONFIG
from ..core.errors import SbasrError
from ..core.options import check_choices
from ..core.quiet import quiet_checkpoint_order
from ..speechllm.checkpoint import average_trained, read_trained
from ..speechllm.model import SpeechLLM
from ..speechllm.sources import bundle
from ..speechllm.stacking import stacked_config
from .arguments import checkpoints, last_checkpoint, tensorboard, training_arguments
from .data import Example
from .dataset import load_data
from .output import (
    RUN_CONFIG,
    check_not_a_file,
    contents,
    ensure_writable_dir,
    is_main_process,
    refuse_earlier_run,
)
from .record import plot_history, save_config
from .speechllm_data import SpeechLLMDataset, collate, encoder_cache, fill_cache, hypotheses
from .speechllm_options import SpeechLLMOptions
from .speechllm_trainer import trainer_classes, training_attention


def finetune_speechllm(opts: SpeechLLMOptions, echo=print, callbacks=()) -> Path:
    """Train the Speech-LLM: the asked stages, one after the other.

    Args:
        opts: The training options.
        echo: Where progress lines go.
        callbacks: transformers `TrainerCallback`s, for callers who watch the run.

    Returns:
        The final model's directory.

    Raises:
        SbasrError: Bad options, data or output directory, or a stage that cannot start.
    """
    from transformers import set_seed

    out = Path(opts.output_dir)
    stages = tuple(sorted(set(opts.stages)))
    if not stages or any(s not in (1, 2) for s in stages):
        raise SbasrError(f"stages {opts.stages}: use 1, 2 or 1,2")
    try:
        check_choices(opts)
    except ValueError as e:
        raise SbasrError(str(e)) from None
    if "{language}" not in opts.prompt:
        raise SbasrError("the prompt must contain {language}")
    prepare_output(opts, stages, echo)
    set_seed(opts.seed)
    # the Speech-LLM is prompted with each row's language: rows without one are skipped
    train, dev = load_data(opts, echo, need_language=True)
    model = _initial_model(opts, stages, echo)
    for stage in stages:
        stage_dir = out / f"stage{stage}"
        if opts.resume and (stage_dir / SPEECHLLM_CONFIG).is_file():
            echo(f"stage {stage}: already done, loading {stage_dir}")
            model.set_stage(stage)  # stage 2 adds the LLM's LoRA, which it saved
            model.load_trained(*read_trained(stage_dir))
            continue
        _train_stage(model, stage, stage_dir, train, dev, opts, echo, callbacks)
    if not is_main_process():  # under torchrun, the first process writes
        return out
    if opts.rescore:  # the weight of Whisper's score, chosen on the dev set
        from .rescore_weight import choose_rescore_weight

        choose_rescore_weight(model, dev, opts.nbest, echo)
    bundle(model.spec, out)  # the Whisper models it needs, kept inside it
    model.save(out)
    plot = out / f"stage{stages[-1]}" / "training.png"
    if plot.is_file():
        shutil.copy2(plot, out / "training.png")
    return out


def prepare_output(opts: SpeechLLMOptions, stages: tuple[int, ...], echo=print) -> None:
    """Check the output directory before anything is loaded. The stages to train must not
    hold an earlier run's output (checkpoints, a finished stage) unless --resume or
    --overwrite says what to do with it; an earlier stage another run left is what a later
    stage starts from (`--stages 2` after `--stages 1`). A folder that is no Speech-LLM
    run at all is refused unless --overwrite."""
    out = Path(opts.output_dir)
    check_not_a_file(out)
    if opts.resume and opts.overwrite:
        raise SbasrError("--resume goes on from the earlier run, --overwrite replaces it: give one")
    if not opts.resume:
        # a stage trained anew makes the stages after it stale too
        ours = [out / f"stage{s}" for s in (1, 2) if s >= stages[0]]
        busy = [d for d in ours if contents(d)]
        run = (out / SPEECHLLM_CONFIG).is_file() or any(
            (out / f"stage{s}").is_dir() for s in (1, 2)
        )
        foreign = bool(contents(out)) and not run
        if foreign and not opts.overwrite:
            raise refuse_earlier_run(out, "other files")
        if busy and not opts.overwrite:
            kind = "checkpoints" if any(checkpoints(d) for d in busy) else "output"
            raise SbasrError(
                f"{busy[0]}: holds {kind} of an earlier run; use --resume to go on from it, "
                "--overwrite to train anew, or another --output-dir"
            )
        for d in busy:
            if not (d / RUN_CONFIG).is_file():
                raise SbasrError(f"{d}: not written by sbasr; move it away or use another -o")
        if is_main_process():
            for d in busy:
                shutil.rmtree(d)
            if busy:
                echo(f"--overwrite: removed {', '.join(d.name for d in busy)} of the earlier run")
    ensure_writable_dir(out)


def _initial_model(opts: SpeechLLMOptions, stages: tuple[int, ...], echo) -> SpeechLLM:
    """A fresh model for stage 1; for stage 2 alone, the stage-1 model it starts from."""
    if stages[0] == 1:
        config = opts.model_config()
        config = replace(
            config,
            encoder2=_absolute(config.encoder2),
            llm=_absolute(config.llm),
            hypothesis_model=_absolute(config.hypothesis_model),
        )
        return SpeechLLM.build(stacked_config(config, echo))
    init = Path(opts.init) if opts.init else Path(opts.output_dir) / "stage1"
    if not (init / SPEECHLLM_CONFIG).is_file():
        raise SbasrError(
            f"{init}: no stage-1 model to start stage 2 from; run --stages 1,2, "
            "or give --init a stage-1 output directory"
        )
    echo(f"stage 2 starts from {init}")
    return SpeechLLM.load(init)


def _absolute(source: str | None) -> str | None:
    """Local paths are stored absolute, so that the saved model finds them from anywhere."""
    if source is None:
        return None
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


def _train_stage(
    model: SpeechLLM,
    stage: int,
    stage_dir: Path,
    train: list[Example],
    dev: list[Example],
    opts: SpeechLLMOptions,
    echo,
    callbacks,
) -> None:
    model.set_stage(stage)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    echo(f"stage {stage}: training {trained / 1e6:.2f} M parameters")
    keep = None if opts.average_best > 1 else opts.save_total_limit  # all, until N best known
    stage_opts = replace(opts.for_stage(stage), output_dir=str(stage_dir), save_total_limit=keep)
    # dev loss only: no logits gathered over the vocabulary
    metric = opts.select_by
    args = training_arguments(
        stage_opts, metric, bool(dev), load_best=False, prediction_loss_only=True
    )
    resume_from = None
    if opts.resume:  # the last complete checkpoint; incomplete ones are skipped, and said
        resume_from = last_checkpoint(stage_dir, lambda m: echo(f"stage {stage}: {m}"))
    if resume_from:
        echo(f"stage {stage}: resuming from {resume_from}")
    cache = encoder_cache(model, opts)
    hyps = hypotheses(model, train + dev, echo) if model.spec.hypothesis else None
    train_set = SpeechLLMDataset(train, model, opts, cache=cache, hypotheses=hyps)
    dev_set = SpeechLLMDataset(dev, model, opts, False, cache, hyps) if dev else None
    from ..speechllm.diagnostics import FusionDiagnostics

    trainer_class, load_best, stop_when_no_better = trainer_classes()
    stopping = [stop_when_no_better(opts.patience)] if opts.patience and dev else []
    trainer = trainer_class(
        model=model,
        args=args,
        data_collator=collate,
        train_dataset=train_set,
        eval_dataset=dev_set,
        callbacks=[
            *callbacks,
            load_best(),
            *stopping,
            FusionDiagnostics(),  # before the TensorBoard callback, which writes what it adds
            tensorboard(stage_dir / "logs"),
        ],
        batch_seconds=opts.batch_seconds,
        dev_wer=metric == "wer",
    )
    if trainer.is_world_process_zero():
        save_config(
            opts.for_stage(stage),
            stage_dir / "sbasr-finetune.json",
            arch="speechllm",
            stage=stage,
            train_examples=len(train),
            dev_examples=len(dev),
            world_size=trainer.accelerator.num_processes,
        )
    if cache is not None:  # on the device the Trainer put the model on
        for dataset in (train_set, dev_set):
            if dataset is not None:
                fill_cache(model, dataset, echo=echo)
    with quiet_checkpoint_order(), training_attention(model, trainer.args.device):
        trainer.train(resume_from_checkpoint=resume_from)
    if opts.average_best > 1 and dev:
        best = _best_checkpoints(trainer.state.log_history, stage_dir, opts.average_best, metric)
        if len(best) > 1:
            echo(f"stage {stage}: averaging {', '.join(p.name for p in best)}")
            model.load_trained(*average_trained(best))
    if not trainer.is_world_process_zero():
        return
    if metric == "wer" and trainer.state.best_metric is not None:
        model.spec.dev_wer = float(trainer.state.best_metric)  # the engine warns when poor
    model.mark_done(stage)
    trainer.save_state()
    plot_history(trainer.state.log_history, stage_dir / "training.png", metric)
    failures = trainer.train_dataset.failures
    if failures:
        echo(f"stage {stage}: skipped {len(failures)} examples whose audio failed to load")
    model.save(stage_dir)  # marks the stage done, for --resume


def _best_checkpoints(
    history: list[dict], stage_dir: Path, n: int, metric: str = "loss"
) -> list[Path]:
    """The n checkpoints with the lowest dev `metric` that are still on disk: by dev WER,
    checkpoints from before the model converged are never among them."""
    key = f"eval_{metric}"
    scored = sorted((h[key], h["step"]) for h in history if key in h)
    out = []
    for _, step in scored:
        path = stage_dir / f"checkpoint-{step}"
        if path.is_dir() and path not in out:
            out.append(path)
        if len(out) == n:
            break
    return out
