"""Decoding codes into outputs, and what users do with them: sample, reconstruct, interpolate,
transfer, written once over a level (sentences of a sentence model, stories of a story run)."""

from textwae.generation.decoding import (
    DecodingConfig,
    beam_search,
    casts_of,
    decode,
    decode_texts,
    with_names,
)
from textwae.generation.levels import Level, SentenceLevel
from textwae.generation.operations import (
    interpolate,
    iter_interpolate,
    iter_reconstruct,
    iter_sample,
    iter_transfer,
    level_of,
    reconstruct,
    sample,
    transfer,
)
from textwae.generation.stories import FlatStoryLevel, Story, StoryLevel
from textwae.models.reading import encode

__all__ = ["DecodingConfig", "FlatStoryLevel", "Level", "SentenceLevel", "Story",
           "StoryLevel", "beam_search", "casts_of", "decode", "decode_texts", "encode",
           "interpolate", "iter_interpolate", "iter_reconstruct", "iter_sample",
           "iter_transfer", "level_of", "reconstruct", "sample", "transfer", "with_names"]
