"""train(): prepare the run directory, build the data, fit; the one entry point for training."""

from __future__ import annotations

import contextlib
import copy
import functools
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from textwae.config.schema import AUTO, Config, check_device, training_precision
from textwae.data.labels import label_shares, mode_labels, unit_components
from textwae.data.records import Example
from textwae.data.splits import load_records, load_splits
from textwae.distributed import barrier, is_main, rank_and_world
from textwae.errors import DataError, TrainingInterrupted
from textwae.evaluation.plots import write_plots
from textwae.evaluation.teacher_forced import story_validation
from textwae.models.autoencoder import TextWAE, model_tokenizers
from textwae.models.pretrained import needs_sentencepiece
from textwae.models.reading import sentence_codes, story_inputs
from textwae.models.run_tokenizer import run_tokenizer_file, train_run_tokenizer
from textwae.models.story import STORY_DIR, StoryModel
from textwae.runs import checkpoint
from textwae.runs.lock import run_lock
from textwae.text import auto_settings as auto
from textwae.text.batching import TokenizedTexts
from textwae.text.names import Names, roles
from textwae.text.streamed_batches import StreamedBatches
from textwae.text.token_cache import sequence_lengths
from textwae.training.callbacks import RegularizerHook
from textwae.training.interrupt import OnSignal, stop_reason
from textwae.training.plateau import PlateauNotice
from textwae.training.resume import check_resume_settings, refuse_finished
from textwae.training.trainer import BatchSource, Progress, Trainer, finished, sampled_batches


@dataclass
class TrainingData:
    train: BatchSource  # SampledBatches of TokenizedTexts in memory, or StreamedBatches
    valid: TokenizedTexts
    valid_units: list[Example]  # for the plots after training


def train(config: Config, run_dir: str | Path, resume: bool = False) -> dict[str, float]:
    """Train a model described by `config` into `run_dir`; resume a stopped run with `resume`.

    A new run refuses a directory that already holds files, so nothing is overwritten; a
    resumed one refuses settings that cannot apply to it (`check_resume_settings`). One
    process at a time writes a run directory (`run_lock`). Under torchrun every rank calls
    this; rank 0 holds the lock, trains the tokenizer and writes the run directory. A signal
    stops the run as Ctrl-C does. `config` is not changed: the run's own copy gains the label
    map (`prior.labels`).
    """
    config = copy.deepcopy(config)
    run_dir = Path(run_dir)
    rank, _ = rank_and_world()
    check_device("train.device", config.train.device)
    training_precision(config.train.precision, config.train.device)  # refuses what cannot run
    existed = run_dir.is_dir()
    if resume:
        check_resume_settings(config, run_dir)
    elif not existed:  # a file is refused here; a folder's content once it is locked
        checkpoint.check_new_run_directory(run_dir)
    with OnSignal(defer=False):  # outside the training loop, a signal stops at once
        if rank == 0 and not existed:
            run_dir.mkdir(parents=True, exist_ok=True)  # for the lock; removed if the run fails
        with run_lock(run_dir) if rank == 0 else contextlib.nullcontext():
            if not resume:  # a process that writes into it is refused by the lock first
                checkpoint.check_new_run_directory(run_dir)
            barrier()  # every rank has looked before rank 0 writes
            cleanup = (checkpoint.removed_unless_resumable(run_dir, existed)
                       if rank == 0 and not resume else contextlib.nullcontext())
            with cleanup:
                return _train(config, run_dir, resume)


def _train(config: Config, run_dir: Path, resume: bool) -> dict[str, float]:
    """The sentence model, then (`story.enabled`) the story level over its codes; a resumed
    run whose story stage has begun goes straight back to it, unless a raised `train` budget
    extends the sentence stage: the story stage then starts again over the new codes."""
    story_begun = resume and (run_dir / STORY_DIR / checkpoint.STATE_FILE).is_file()
    sentences = run_dir / checkpoint.STATE_FILE
    if story_begun and not finished(Progress.saved_in(sentences), config.train):
        warnings.warn(f"the raised train.max_steps or train.max_time extends the sentence "
                      f"stage; the story stage of {run_dir} then trains again from its start",
                      stacklevel=2)
        story_begun = False
    elif story_begun:
        refuse_finished(run_dir / STORY_DIR / checkpoint.STATE_FILE,
                        config.story.budget(config.train), "story")
    elif resume and not config.story.enabled:
        refuse_finished(sentences, config.train, "train")
    metrics = {} if story_begun else _train_sentences(config, run_dir, resume)
    if config.story.enabled:
        metrics = train_story_level(run_dir, resume=story_begun, config=config)
    return metrics


def _train_sentences(config: Config, run_dir: Path, resume: bool) -> dict[str, float]:
    rank, _ = rank_and_world()
    train_units, valid_units = prepare_run(config, run_dir, resume)
    model = TextWAE.build(config, run_dir, parts_from_run=resume)
    if resume and config.model.freeze_encoder:
        # the run's copy of the encoder is untrained until its weights are loaded, and the
        # features are computed before the trainer loads the saved state
        weights, _ = checkpoint.load_tensors(run_dir / checkpoint.WEIGHTS_FILE)
        model.load_weights(weights, source=run_dir / checkpoint.WEIGHTS_FILE)
    # a frozen encoder computes its features on the device it trains on
    model.to(config.train.device)
    data = build_data(model, train_units, valid_units)
    hooks = [RegularizerHook(hook) for hook in model.regularizer.step_hooks(model.prior)]
    trainer = Trainer(model, data.train, data.valid, run_dir, callbacks=[*hooks, PlateauNotice()])
    torch.manual_seed(config.train.seed + rank)  # ranks differ in dropout and prior samples
    metrics = fit(trainer, config, run_dir, resume)
    if rank == 0:
        write_plots(TextWAE.from_pretrained(run_dir, device=config.train.device), run_dir,
                    data.valid_units)
    return metrics


def prepare_run(config: Config, run_dir: Path,
                resume: bool) -> tuple[list[Example], list[Example]]:
    """Seed, read the splits, learn the names (data.mask_names) and train the tokenizer once
    (rank 0), and name the labels in `config.prior.labels`; returns the training and
    validation units."""
    rank, _ = rank_and_world()
    torch.manual_seed(config.train.seed)  # the same initial weights on every rank
    if config.train.num_threads is not None:
        torch.set_num_threads(config.train.num_threads)
    train_units, valid_units = load_splits(config.data)
    chosen = auto.resolve_corpus_settings(config, train_units)  # said once all went well
    if resume:  # refuse a run whose files are missing, corrupt or foreign before writing to it
        TextWAE.from_pretrained(run_dir)
    elif rank == 0:
        texts = [unit.text for unit in train_units]
        names = Names.learn(texts) if config.data.mask_names else None
        if names is not None:  # the tokenizer spends no pieces on names, one on each role
            texts = [names.mask(text)[0] for text in texts]
        symbols = roles() if names else ()
        if "tokenizer.vocab_size" in config.unresolved() and needs_sentencepiece(config.model):
            chosen.append(auto.apply(config, auto.choose_vocab_size(texts, config.tokenizer,
                                                                   symbols)))
        tokenizer = (train_run_tokenizer(texts, config, symbols)
                     if needs_sentencepiece(config.model) else None)
        if config.data.max_length == AUTO:
            parts = set(model_tokenizers(config.model, lambda: tokenizer).values())
            chosen.append(auto.apply(config, auto.choose_max_length(
                auto.unit_lengths(texts, parts))))
        run_dir.mkdir(parents=True, exist_ok=True)  # once the data and the tokenizer are good
        if tokenizer is not None:
            checkpoint.atomic_write(run_dir / run_tokenizer_file(config), tokenizer.save)
        if names is not None:
            checkpoint.atomic_write(run_dir / checkpoint.NAMES_FILE, names.save)
    barrier()  # the tokenizer and the names are made once and shared
    auto.agree_with_rank_zero(config)
    config.check()  # the values chosen from the corpus, against the rest
    auto.announce(chosen)
    # the label -> mode map, saved with the config
    labelled = config.data.label_field or config.data.sentence_label_field
    prior = config.prior
    prior.labels = mode_labels(train_units, prior) if labelled else None
    if (prior.labels is not None and len(prior.labels) == prior.components
            and prior.weights is None and not prior.learnable):
        prior.weights = label_shares(train_units, prior.labels, config.data.labeled_fraction,
                                     config.data.split_seed)
    return train_units, valid_units


def build_data(model: TextWAE, train_units: list[Example],
               valid_units: list[Example]) -> TrainingData:
    """Token ids (and label-guided modes, and a frozen encoder's features) of both splits:
    the training split in memory, or as a stream whose pools are tokenised (and a frozen
    encoder's features computed) as they come, never cached."""
    data, labels = model.config.data, model.config.prior.labels
    rank, world = rank_and_world()

    def prepare(units: list[Example], labeled_fraction: float = 1.0,
                cache_dir: str | None = data.cache_dir) -> TokenizedTexts:
        texts = model.tokenize([unit.text for unit in units], cache_dir, features=True)
        if labels is not None:
            texts.components = unit_components(units, labels, labeled_fraction, data.split_seed)
        return texts

    if data.streaming:
        train = StreamedBatches(
            data, functools.partial(prepare, labeled_fraction=data.labeled_fraction,
                                    cache_dir=None),
            model.config.train.batch_size, seed=model.config.train.seed, num_replicas=world,
            rank=rank)
    else:
        texts = prepare(train_units, data.labeled_fraction)
        train = sampled_batches(texts, sequence_lengths(texts.ids), model.config.train)
    return TrainingData(train=train, valid=prepare(valid_units), valid_units=valid_units)


def fit(trainer: Trainer, config: Config, run_dir: Path, resume: bool) -> dict[str, float]:
    """Start the trainer's stage (its model written into its folder at once: a complete run
    directory from the start) or resume it, and fit it. A resumed run's config.yaml then keeps
    `config`, a raised budget among its settings, once a state saved under it exists (the fit
    ended, or a signal stopped it), so that the next resume goes on with it; a failed resume
    leaves the file as it was."""
    if not resume:
        if is_main():
            trainer.model.save_pretrained(trainer.run_dir)
        return trainer.fit()
    trainer.resume()
    try:
        metrics = trainer.fit()
    except TrainingInterrupted:
        _keep_config(config, run_dir)
        raise
    _keep_config(config, run_dir)
    return metrics


def _keep_config(config: Config, run_dir: Path) -> None:
    if is_main():
        checkpoint.atomic_write(run_dir / checkpoint.CONFIG_FILE, config.save)


def train_story_level(run_dir: Path, resume: bool,
                      config: Config | None = None) -> dict[str, float]:
    """Fit the story model on the codes its run's sentence model (best weights) gives each
    record's sentences, into the run's `story/` folder, through the one training loop.
    `config`: the run's settings (a resume's budget), by default its config.yaml's; the label
    map is always the run's, read from its data when it began."""
    rank, _ = rank_and_world()
    sentences = TextWAE.from_pretrained(run_dir)
    run_prior = sentences.config.prior
    config = copy.deepcopy(config or sentences.config)
    config.prior.labels, config.prior.weights = run_prior.labels, run_prior.weights
    sentences.to(config.train.device)
    story_dir = run_dir / STORY_DIR
    if rank == 0 and not resume:  # what a stopped first attempt left, before its first state
        shutil.rmtree(story_dir, ignore_errors=True)
        story_dir.mkdir()
    barrier()
    data = config.data
    codes = [sentence_codes(
        sentences, story_inputs(sentences, [record.text for record in records]),
        None if config.prior.labels is None else unit_components(
            records, config.prior.labels, fraction, data.split_seed))
        for records, fraction in zip(load_records(data), (data.labeled_fraction, 1.0),
                                     strict=True)]
    if len(codes[1]) < 2:  # the MMD of held-out story codes needs two of them
        raise DataError(f"the story stage holds out {len(codes[1])} story; it needs at least 2 "
                        "(raise data.valid_fraction or give data.valid)")
    torch.manual_seed(config.train.seed)  # the same initial weights on every rank
    model = StoryModel(config)
    hooks = [RegularizerHook(hook) for hook in model.regularizer.step_hooks(model.prior)]
    budget = config.story.budget(config.train)
    trainer = Trainer(model, sampled_batches(codes[0], codes[0].lengths, budget), codes[1],
                      story_dir, callbacks=hooks, validate=story_validation, cfg=budget)
    torch.manual_seed(config.train.seed + rank)
    try:
        return fit(trainer, config, run_dir, resume)
    except TrainingInterrupted as stopped:  # name the run directory, which --resume takes
        raise TrainingInterrupted(
            f"{stop_reason(stopped.exit_status - 128)} after step {trainer.progress.step} of "
            f"the story stage; {run_dir} holds a resumable state: continue with --resume",
            stopped.exit_status) from None
