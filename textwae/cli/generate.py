"""`textwae generate` (generate.py): sample, reconstruct, interpolate, encode, transfer, modes,
and whole stories of a story run (story; --story on reconstruct, interpolate, transfer)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from textwae import generation
from textwae.cli.common import UsageError, load_model
from textwae.config.schema import check_device
from textwae.data.labels import mode_name, resolve_mode
from textwae.data.splits import load_splits
from textwae.errors import DataError
from textwae.evaluation.mode_report import mode_report
from textwae.generation import stories
from textwae.generation.stories import Story
from textwae.models.story import StoryRun


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample", help="decode samples of the prior")
    sample.add_argument("--n", type=int, default=10)
    sample.add_argument("--mode", default=None, help="sample from this mode: label or index")
    sample.set_defaults(handler=_sample)
    rebuild = commands.add_parser("reconstruct", help="encode texts and decode their codes")
    rebuild.set_defaults(handler=_reconstruct)
    between = commands.add_parser("interpolate", help="decode the path between two texts")
    between.add_argument("start")
    between.add_argument("end")
    between.add_argument("--steps", type=int, default=5)
    between.set_defaults(handler=_interpolate)
    modes = commands.add_parser("modes", help="samples, nearest training units and label "
                                "histogram of every mode")
    modes.add_argument("--n", type=int, default=5)
    modes.set_defaults(handler=_modes)
    encode = commands.add_parser("encode", help="print each text's code and mode as JSONL")
    encode.set_defaults(handler=_encode)
    move = commands.add_parser("transfer", help="rewrite texts into another mode")
    move.add_argument("--to", required=True, help="target mode: label or index")
    move.add_argument("--strength", type=float, default=None,
                      help="the largest k in z + k (mean_target - mean_source): 1 moves by "
                           "the means' difference, less keeps more of the input (default: the "
                           "run's prior.transfer_strength)")
    move.add_argument("--strength-steps", type=int, default=None,
                      help="strengths tried, evenly spaced up to --strength: each text keeps "
                           "the first at which it reads as the target; 1: --strength alone "
                           "(default: the run's prior.transfer_steps)")
    move.set_defaults(handler=_transfer)
    story = commands.add_parser("story", help="sample whole stories (a story run: "
                                "configs/stories.yaml)")
    story.add_argument("--n", type=int, default=5)
    story.add_argument("--mode", default=None, help="sample from this mode: label or index")
    story.add_argument("--max-sentences", type=int, default=None,
                       help="sentences per story at most (default: the run's "
                            "story.max_sentences)")
    story.add_argument("--path-temperature", type=float, default=None,
                       help="draw each next sentence code and each end at this temperature "
                            "(default: the most likely code, which reads more coherent)")
    story.set_defaults(handler=_story)
    for sub in (sample, modes):
        sub.add_argument("--code-scale", type=float, default=1.0,
                         help="draw codes at this multiple of each mode's standard deviation: "
                              "below 1 nearer the mode's mean, where samples read as the mode "
                              "more often and vary less (default 1: the prior)")
    for sub in (sample, modes, story):
        sub.add_argument("--redraws", type=int, default=None,
                         help="draw a sample again, up to this many times, while the model "
                              "does not read its text as its code's mode; 0: keep every draw "
                              "(default: the run's prior.sample_redraws)")
    for sub in (rebuild, between, move):
        sub.add_argument("--story", action="store_true",
                         help="the texts are stories: go through the story level")
    for sub in (rebuild, encode, move):
        sub.add_argument("texts", nargs="*")
        sub.add_argument("--input", type=Path, help="file with one text per line")
    for sub in (sample, rebuild, between, modes, encode, move, story):
        sub.add_argument("--model", type=Path, required=True, help="run directory")
        _add_decoding(sub)


def _add_decoding(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding")
    defaults = generation.DecodingConfig()
    group.add_argument("--temperature", type=float, default=defaults.temperature)
    group.add_argument("--top-k", type=int, default=defaults.top_k)
    group.add_argument("--top-p", type=float, default=defaults.top_p)
    group.add_argument("--greedy", action="store_true")
    group.add_argument("--max-length", type=int, default=defaults.max_length)
    group.add_argument("--beam", type=int, default=1, help="beam search of this width")
    group.add_argument("--device", default="cpu")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--format", choices=["text", "jsonl"], default="text")


def _decoding(args: argparse.Namespace) -> generation.DecodingConfig:
    return generation.DecodingConfig(
        greedy=args.greedy, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, max_length=args.max_length, beam=args.beam)


def _read_texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.texts)
    if args.input is not None:
        try:
            texts += args.input.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read {args.input}: {error}") from error
        texts = [text for text in texts if text.strip()]
    if not texts:
        raise UsageError(f"give texts to {args.command}, or --input FILE")
    return texts


def _print(texts: list[str], modes: list[int], fmt: str) -> None:
    for text, mode in zip(texts, modes, strict=True):
        print(json.dumps({"text": text, "mode": mode}) if fmt == "jsonl" else text)
    sys.stdout.flush()  # each chunk as soon as it is decoded, also into a pipe


def _print_chunks(chunks: Iterable[tuple[list[str], list[int]]], fmt: str) -> None:
    for texts, modes in chunks:
        _print(texts, modes, fmt)


def _sample(args: argparse.Namespace) -> None:
    decoding = _decoding(args)
    model = load_model(args)
    mode = (None if args.mode is None else
            resolve_mode(args.mode, model.config.prior.labels, model.prior.components))
    _print_chunks(generation.iter_sample(model, args.n, decoding, mode, args.seed,
                                         args.code_scale, args.redraws), args.format)


def _print_stories(run: StoryRun, stories: list[Story], fmt: str) -> None:
    """One story per line (its sentences joined by spaces), or JSONL with the sentences."""
    labels = run.sentences.config.prior.labels
    for story in stories:
        print(json.dumps({"text": story.text, "sentences": story.sentences, "mode": story.mode,
                          "label": mode_name(labels, story.mode)})
              if fmt == "jsonl" else story.text)
    sys.stdout.flush()


def _story_run(args: argparse.Namespace) -> StoryRun:
    check_device("--device", args.device)
    return StoryRun.from_pretrained(args.model, device=args.device)


def _story(args: argparse.Namespace) -> None:
    decoding = _decoding(args)
    run = _story_run(args)
    mode = (None if args.mode is None else resolve_mode(
        args.mode, run.sentences.config.prior.labels, run.stories.prior.components))
    _print_stories(run, stories.sample_stories(run, args.n, decoding, mode, args.seed,
                                               args.max_sentences, args.path_temperature,
                                               redraws=args.redraws), args.format)


def _reconstruct(args: argparse.Namespace) -> None:
    decoding = _decoding(args)
    if args.story:
        run = _story_run(args)
        _print_stories(run, stories.reconstruct_stories(run, _read_texts(args), decoding,
                                                        args.seed), args.format)
        return
    model = load_model(args)
    _print_chunks(generation.iter_reconstruct(model, _read_texts(args), decoding, args.seed),
                  args.format)


def _interpolate(args: argparse.Namespace) -> None:
    decoding = _decoding(args)
    if args.story:
        run = _story_run(args)
        _print_stories(run, stories.interpolate_stories(run, args.start, args.end, args.steps,
                                                        decoding, args.seed), args.format)
        return
    model = load_model(args)
    _print(*generation.interpolate(model, args.start, args.end, args.steps, decoding,
                                   args.seed), args.format)


def _transfer(args: argparse.Namespace) -> None:
    decoding = _decoding(args)
    if args.story:
        run = _story_run(args)
        target = resolve_mode(args.to, run.sentences.config.prior.labels,
                              run.stories.prior.components)
        _print_stories(run, stories.transfer_stories(run, _read_texts(args), target, decoding,
                                                     args.seed, args.strength,
                                                     args.strength_steps), args.format)
        return
    model = load_model(args)
    target = resolve_mode(args.to, model.config.prior.labels, model.prior.components)
    _print_chunks(generation.iter_transfer(model, _read_texts(args), target, decoding,
                                           args.seed, args.strength, args.strength_steps),
                  args.format)


def _encode(args: argparse.Namespace) -> None:
    _decoding(args)  # the decoding options are checked even though encoding needs none
    model = load_model(args)
    texts = _read_texts(args)
    labels = model.config.prior.labels
    codes = generation.encode(model, texts).mean
    for text, code, mode in zip(texts, codes.tolist(), model.prior.assign(codes).tolist(),
                                strict=True):
        print(json.dumps({"text": text, "mode": mode, "label": mode_name(labels, mode),
                          "code": [round(value, 5) for value in code]}))


def _modes(args: argparse.Namespace) -> None:
    """Per mode: samples, then (when the training data is readable) the nearest training
    units to its mean and the label histogram of the training units assigned to it."""
    decoding = _decoding(args)
    model = load_model(args)
    try:
        report = mode_report(model, load_splits(model.config.data)[0])
    except DataError as error:
        print(f"warning: no training-data report: {error}", file=sys.stderr)
        report = None
    labels = model.config.prior.labels
    for mode in range(model.prior.components):
        samples = generation.iter_sample(model, args.n, decoding, mode, args.seed,
                                         args.code_scale, args.redraws)
        if args.format == "jsonl":
            _print_chunks(samples, args.format)
            continue
        name = mode_name(labels, mode)
        print(f"== mode {mode}{f' ({name})' if name else ''} ==")
        _print_chunks(samples, args.format)
        if report is not None:
            print(f"-- nearest training units; labels assigned: {report[mode]['labels']}")
            for text in report[mode]["nearest"]:
                print(f"   {text}")
