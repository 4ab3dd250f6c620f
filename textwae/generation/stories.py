"""The story levels: whole stories as the outputs of the generation core.

`StoryLevel` goes through a story run's story code: the story model turns story codes into
paths of sentence codes (`StoryModel.generate_codes`), the sentence decoder turns every code
into a sentence, and a sentence that breaks its story is decoded again (`mend_stories`).
`FlatStoryLevel` reads a sentence model trained on whole stories as units, each output split
into its sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from textwae.config.schema import GenerationConfig
from textwae.data.labels import mode_name
from textwae.data.units import split_sentences
from textwae.generation.arguments import real_number, whole_number
from textwae.generation.decoding import DecodingConfig, casts_of, decode_texts, with_names
from textwae.generation.levels import SentenceLevel
from textwae.models.autoencoder import TextWAE
from textwae.models.reading import sentence_codes, story_inputs
from textwae.models.story import StoryRun
from textwae.objectives.priors import MixtureOfGaussians
from textwae.text.names import Cast, census_sex, pronoun_clashes, role_sex

REDRAWS = 4  # fresh decodings of a sentence that breaks its story (`mend_stories`)
SENTENCES_AT_ONCE = 64  # sentence codes decoded in one batch


@dataclass
class Story:
    sentences: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def story_record(story: Story, mode: int, labels: list[str] | None) -> dict[str, Any]:
    """A story as `generate --format jsonl` prints it: its text, sentences and mode."""
    return {"text": story.text, "sentences": story.sentences, "mode": mode,
            "label": mode_name(labels, mode)}


def fill_story_names(model: TextWAE, stories: list[Story], generator: torch.Generator,
                     casts: Sequence[Cast] | None) -> list[Story]:
    """Decoded stories with their roles filled (`generation.decoding.with_names`): story i
    takes the names of casts[i], else new ones, one name per role for the whole story."""
    casts = casts or [{} for _ in stories]
    return [Story(with_names(model, story.sentences, generator, [cast] * len(story.sentences)))
            for story, cast in zip(stories, casts, strict=True)]


@dataclass
class StoryLevel:
    """A story run's story level. Paths of sentence codes take each step's most likely code
    and end once the end is more likely than not, or with `path_temperature` draw both (the
    code's spread scaled by it), at most `max_sentences` long (None: the run's
    story.max_sentences); sentences that break their story are mended unless `as_decoded`."""

    run: StoryRun
    max_sentences: int | None = None
    path_temperature: float | None = None
    as_decoded: bool = False

    def __post_init__(self) -> None:
        if self.path_temperature is not None:
            self.path_temperature = real_number(self.path_temperature, "the path temperature",
                                                "path_temperature")
        if self.max_sentences is not None:
            self.max_sentences = whole_number(self.max_sentences, "max-sentences",
                                              "max_sentences")

    @property
    def prior(self) -> MixtureOfGaussians:
        return self.run.stories.prior

    @property
    def labels(self) -> list[str] | None:
        return self.run.sentences.config.prior.labels

    @property
    def settings(self) -> GenerationConfig:
        return self.run.sentences.config.generation

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """Story codes (N, Z): the story model's posterior mean of each story text."""
        paths = sentence_codes(self.run.sentences, story_inputs(self.run.sentences, texts))
        device = next(self.run.stories.parameters()).device
        batch = paths.batch(list(range(len(paths)))).to(device)
        return self.run.stories.encode(batch.codes, batch.lengths).mean

    def decode(self, codes: torch.Tensor, decoding: DecodingConfig,
               generator: torch.Generator) -> list[Story]:
        max_sentences = self.max_sentences or self.run.stories.config.story.max_sentences
        paths = self.run.stories.generate_codes(codes, max_sentences, self.path_temperature,
                                                generator)
        sentences = _decode_sentences(self.run, torch.cat(paths), decoding, generator)
        stories, start = [], 0
        for path in paths:
            stories.append(sentences[start : start + len(path)])
            start += len(path)
        if not self.as_decoded:
            stories = mend_stories(self.run, paths, stories, decoding, generator)
        return [Story(story) for story in stories]

    def text(self, output: Story) -> str:
        return output.text

    def casts(self, texts: list[str]) -> list[Cast] | None:
        return casts_of(self.run.sentences, texts)

    def fill_names(self, outputs: list[Story], generator: torch.Generator,
                   casts: Sequence[Cast] | None) -> list[Story]:
        return fill_story_names(self.run.sentences, outputs, generator, casts)

    def record(self, output: Story, mode: int) -> dict[str, Any]:
        return story_record(output, mode, self.labels)


def mend_stories(run: StoryRun, paths: list[torch.Tensor], stories: list[list[str]],
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
        for (i, j), text in zip(broken, _decode_sentences(run, codes, redraw, generator),
                                strict=True):
            stories[i][j] = text
    return [[sentence for j, sentence in enumerate(story) if sentence not in story[:j]]
            for story in stories]


def _broken(run: StoryRun, story: list[str]) -> list[int]:
    """The sentences of a decoded story that `mend_stories` decodes again."""
    broken = {j for j, sentence in enumerate(story) if sentence in story[:j]}
    sex_of = census_sex if run.sentences.names is None else role_sex
    broken.update(pronoun_clashes(story, sex_of))
    return sorted(broken)


def _decode_sentences(run: StoryRun, codes: torch.Tensor, decoding: DecodingConfig,
                      generator: torch.Generator) -> list[str]:
    """The sentence of each sentence code (N, D), `SENTENCES_AT_ONCE` codes at a time."""
    return [text for part in codes.split(SENTENCES_AT_ONCE)
            for text in decode_texts(run.sentences, part, decoding, generator)]


@dataclass
class FlatStoryLevel(SentenceLevel):
    """A sentence model whose units are whole stories (data.unit=story): its outputs are its
    decoded texts, each split into sentences."""

    def decode(self, codes: torch.Tensor, decoding: DecodingConfig,  # type: ignore[override]
               generator: torch.Generator) -> list[Story]:
        return [Story(split_sentences(text) or [text])
                for text in super().decode(codes, decoding, generator)]

    def text(self, output: Story) -> str:  # type: ignore[override]
        return output.text

    def fill_names(self, outputs: list[Story],  # type: ignore[override]
                   generator: torch.Generator, casts: Sequence[Cast] | None) -> list[Story]:
        return fill_story_names(self.model, outputs, generator, casts)

    def record(self, output: Story, mode: int) -> dict[str, Any]:  # type: ignore[override]
        return story_record(output, mode, self.labels)
