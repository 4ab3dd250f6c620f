"""Whole stories from a story run: sample from a mode, reconstruct, interpolate, transfer.

Each goes through the story code: the story model turns story codes into paths of sentence
codes (`StoryModel.generate_codes`) and the sentence decoder turns every code into a
sentence. Sentence codes are decoded `CHUNK` at a time, as the sentence operations do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from textwae.data.units import split_sentences
from textwae.errors import ConfigError, DataError
from textwae.generation.decoding import (
    DecodingConfig,
    casts_of,
    decode_texts,
    path_casts,
    with_names,
)
from textwae.generation.operations import (
    CHUNK,
    check_texts,
    check_transfer,
    checked_redraws,
    encode,
    line_between,
    reads_as,
    reconstruct,
    redraw_astray,
    sample,
    searched_transfer,
)
from textwae.models.autoencoder import TextWAE
from textwae.models.story import StoryCodes, StoryRun
from textwae.text.batching import chunks
from textwae.text.names import Cast, census_sex, pronoun_clashes, role_sex

REDRAWS = 4  # fresh decodings of a sentence that breaks its story (`mended`)


@dataclass
class Story:
    sentences: list[str]
    mode: int  # the story prior's component of the story code it was decoded from

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def story_sentences(texts: list[str]) -> list[list[str]]:
    """Each story text split into its sentences (`textwae.data.units.split_sentences`)."""
    check_texts(texts)
    return [split_sentences(text) for text in texts]


@torch.no_grad()
def sentence_codes(model: TextWAE, stories: list[list[str]],
                   components: torch.Tensor | None = None) -> StoryCodes:
    """The sentence model's code (the posterior mean) of every sentence of every story."""
    flat = [sentence for story in stories for sentence in story]
    if not flat:
        raise DataError("no sentences to encode")
    codes = torch.cat([encode(model, chunk).mean for chunk in chunks(flat, CHUNK * 4)])
    return StoryCodes(list(codes.cpu().split([len(story) for story in stories])), components)


def story_inputs(model: TextWAE, texts: list[str]) -> list[list[str]]:
    """What the story level reads of each story text: its names as roles (data.mask_names),
    counted over the whole story so that one character keeps one role in every sentence, then
    its sentences, at most story.max_sentences of them."""
    if model.names is not None:
        texts = [model.names.mask(text)[0] for text in texts]
    return [story[: model.config.story.max_sentences] for story in story_sentences(texts)]


def named(run: StoryRun, stories: list[Story], generator: torch.Generator,
          casts: list[Cast] | None = None) -> list[Story]:
    """Decoded stories with their roles filled (`generation.decoding.with_names`): story i
    takes the names of casts[i], else new ones, one name per role for the whole story."""
    casts = casts or [{} for _ in stories]
    return [Story(with_names(run.sentences, story.sentences, generator,
                             [cast] * len(story.sentences)), story.mode)
            for story, cast in zip(stories, casts, strict=True)]


@torch.no_grad()
def story_codes(run: StoryRun, texts: list[str]) -> torch.Tensor:
    """Story codes (N, Z): the posterior means of the story model for each story text."""
    paths = sentence_codes(run.sentences, story_inputs(run.sentences, texts))
    batch = paths.batch(list(range(len(paths)))).to(_device(run))
    return run.stories.encode(batch.codes, batch.lengths).mean


def decode_stories(run: StoryRun, z: torch.Tensor, decoding: DecodingConfig,
                   generator: torch.Generator, max_sentences: int | None = None,
                   path_temperature: float | None = None,
                   as_decoded: bool = False) -> list[Story]:
    """Stories of story codes z (N, Z). Paths of sentence codes take each step's most likely
    code and end once the end is more likely than not, or with `path_temperature` draw both
    (the code's spread scaled by it); the sentences are decoded as `decoding` says, and a
    sentence that breaks its story is decoded again (`mended`) unless `as_decoded`. Names
    stay roles (data.mask_names) until `named` fills them."""
    max_sentences = max_sentences or run.stories.config.story.max_sentences
    paths = run.stories.generate_codes(z, max_sentences, path_temperature, generator)
    flat = torch.cat(paths)  # (sum S_i, D)
    sentences = _decoded(run, flat, decoding, generator)
    texts, start = [], 0
    for path in paths:
        texts.append(sentences[start : start + len(path)])
        start += len(path)
    if not as_decoded:
        texts = mended(run, paths, texts, decoding, generator)
    modes = run.stories.prior.assign(z).tolist()
    return [Story(story, mode) for story, mode in zip(texts, modes, strict=True)]


def mended(run: StoryRun, paths: list[torch.Tensor], stories: list[list[str]],
           decoding: DecodingConfig, generator: torch.Generator) -> list[list[str]]:
    """The stories with no sentence said twice and no sentence opening with a pronoun its
    characters contradict (`pronoun_clashes`: "<m1> won. She cried."; characters are roles
    where names are (data.mask_names), else census first names). A greedy path can come back
    to a code it has decoded already, and each code is decoded without its story's cast;
    either reads as broken. Such a sentence is decoded again from its code (sampled, even
    where `decoding` is greedy) up to `REDRAWS` times; one that still repeats is left out, one
    that still clashes kept."""
    stories = [list(story) for story in stories]
    redraw = replace(decoding, greedy=False, beam=1)
    for _ in range(REDRAWS):
        broken = [(i, j) for i, story in enumerate(stories) for j in _broken(run, story)]
        if not broken:
            break
        codes = torch.stack([paths[i][j] for i, j in broken])
        for (i, j), text in zip(broken, _decoded(run, codes, redraw, generator), strict=True):
            stories[i][j] = text
    return [[sentence for j, sentence in enumerate(story) if sentence not in story[:j]]
            for story in stories]


def _broken(run: StoryRun, story: list[str]) -> list[int]:
    """The sentences of a decoded story that `mended` decodes again."""
    broken = {j for j, sentence in enumerate(story) if sentence in story[:j]}
    sex_of = census_sex if run.sentences.names is None else role_sex
    broken.update(pronoun_clashes(story, sex_of))
    return sorted(broken)


def _decoded(run: StoryRun, codes: torch.Tensor, decoding: DecodingConfig,
             generator: torch.Generator) -> list[str]:
    """The sentence of each sentence code (N, D), `CHUNK` codes at a time."""
    return [text for part in codes.split(CHUNK)
            for text in decode_texts(run.sentences, part, decoding, generator)]


def sample_stories(run: StoryRun, n: int, decoding: DecodingConfig, mode: int | None = None,
                   seed: int = 0, max_sentences: int | None = None,
                   path_temperature: float | None = None, as_decoded: bool = False,
                   redraws: int | None = None) -> list[Story]:
    """n stories from story-prior samples (of one mode if given). Their paths are greedy by
    default: on ROCStories sampled paths (temperature 0.3 / 0.7 / 1) are called coherent
    0.56 / 0.45 / 0.34 times as often as real stories, greedy ones 0.61, at about the same
    Self-BLEU (benchmarks/stories.py); `path_temperature` samples them.

    As `sample` does for sentences, a story that the story model, encoding it again, does
    not place in its mode is drawn again, up to `redraws` times (None: the run's
    prior.sample_redraws)."""
    if path_temperature is not None and not 0 < path_temperature < math.inf:
        raise ConfigError(f"the path temperature must be positive and finite, got "
                          f"{path_temperature}")
    if n < 1:
        raise ConfigError(f"the number of stories must be at least 1, got {n}")
    if max_sentences is not None and max_sentences < 1:
        raise ConfigError(f"--max-sentences must be at least 1, got {max_sentences}")
    redraws = checked_redraws(run.stories, redraws)
    prior = run.stories.prior
    generator = torch.Generator().manual_seed(seed)

    def decoded(z: torch.Tensor) -> list[Story]:
        return decode_stories(run, z, decoding, generator, max_sentences, path_temperature,
                              as_decoded)

    stories = []
    for start in range(0, n, CHUNK):
        z = prior.sample(min(CHUNK, n - start), component=mode, generator=generator)
        chunk = decoded(z)
        redraw_astray(run.stories, z, chunk, mode, redraws,
                      lambda count: prior.sample(count, component=mode, generator=generator),
                      decoded, lambda outputs, wanted: read_as(run, outputs, wanted))
        stories += named(run, chunk, generator)
    return stories


def reconstruct_stories(run: StoryRun, texts: list[str], decoding: DecodingConfig,
                        seed: int = 0) -> list[Story]:
    """Decode each story's own story code; a story keeps its names."""
    generator = torch.Generator().manual_seed(seed)
    return [story for part in chunks(texts, CHUNK)
            for story in named(run, decode_stories(run, story_codes(run, part), decoding,
                                                   generator),
                               generator, casts_of(run.sentences, part))]


def interpolate_stories(run: StoryRun, start: str, end: str, steps: int,
                        decoding: DecodingConfig, seed: int = 0) -> list[Story]:
    """Decode `steps` story codes on the straight line from the code of `start` to `end`'s;
    the path keeps `start`'s names (and `end`'s for roles `start` lacks)."""
    codes = story_codes(run, [start, end])  # (2, Z)
    z = line_between(codes, steps)
    generator = torch.Generator().manual_seed(seed)
    return named(run, decode_stories(run, z, decoding, generator), generator,
                 path_casts(run.sentences, start, end, steps))


def transfer_stories(run: StoryRun, texts: list[str], to_mode: int, decoding: DecodingConfig,
                     seed: int = 0, strength: float | None = None,
                     steps: int | None = None) -> list[Story]:
    """Rewrite stories into another mode by offset arithmetic on their story codes, each
    moved only as far as its story, encoded again, needs to lie in the target mode (as
    sentence transfers, `generation.operations.searched_transfer`)."""
    strengths = check_transfer(run.stories, to_mode, strength, steps)
    check_texts(texts)
    generator = torch.Generator().manual_seed(seed)
    return [story for part in chunks(texts, CHUNK) for story in named(run, searched_transfer(
        run.stories, story_codes(run, part), to_mode, strengths,
        lambda z: decode_stories(run, z, decoding, generator),
        lambda moved: read_as(run, moved, torch.full((len(moved),), to_mode)))[0],
        generator, casts_of(run.sentences, part))]


def read_as(run: StoryRun, stories: list[Story], modes: torch.Tensor) -> torch.Tensor:
    """Whether the story model, encoding each story again, places it in its mode of `modes`
    (`generation.operations.reads_as`)."""
    return reads_as(run.stories, [story.text for story in stories], modes,
                    lambda again: story_codes(run, again))


def _device(run: StoryRun) -> torch.device:
    return next(run.stories.parameters()).device


@dataclass
class StoryGenerator:
    """What evaluating stories needs of a model, whatever its kind: greedy reconstructions of
    story texts, and stories sampled at `temperature` (n, mode or None, seed)."""

    reconstruct: Callable[[list[str]], list[Story]]
    sample: Callable[[int, int | None, int], list[Story]]
    labels: list[str] | None  # of the modes, in order

    @classmethod
    def of_run(cls, run: StoryRun, temperature: float, as_decoded: bool = False,
               redraws: int | None = None) -> StoryGenerator:
        """A story run: through its story level (`sample_stories`' options)."""
        length = run.sentences.config.data.max_length
        greedy = DecodingConfig(greedy=True, max_length=length)
        sampling = DecodingConfig(temperature=temperature, max_length=length)
        return cls(lambda texts: reconstruct_stories(run, texts, greedy),
                   lambda n, mode, seed: sample_stories(run, n, sampling, mode, seed,
                                                        as_decoded=as_decoded,
                                                        redraws=redraws),
                   run.sentences.config.prior.labels)

    @classmethod
    def of_flat(cls, model: TextWAE, temperature: float) -> StoryGenerator:
        """A model of whole stories as units (data.unit=story): each decoded text, split."""
        length = model.config.data.max_length
        greedy = DecodingConfig(greedy=True, max_length=length)
        sampling = DecodingConfig(temperature=temperature, max_length=length)

        def stories(generated: tuple[list[str], list[int]]) -> list[Story]:
            return [Story(split_sentences(text) or [text], mode)
                    for text, mode in zip(*generated, strict=True)]
        return cls(lambda texts: stories(reconstruct(model, texts, greedy)),
                   lambda n, mode, seed: stories(sample(model, n, sampling, mode, seed)),
                   model.config.prior.labels)
