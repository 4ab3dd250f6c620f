"""Decoding codes into text, and what users do with it: sample, reconstruct, interpolate."""

from textwae.generation.decoding import (
    DecodingConfig,
    beam_search,
    casts_of,
    decode,
    decode_texts,
    with_names,
)
from textwae.generation.operations import (
    encode,
    interpolate,
    iter_reconstruct,
    iter_sample,
    iter_transfer,
    reconstruct,
    sample,
    texts_and_modes,
    transfer,
)

__all__ = ["DecodingConfig", "beam_search", "casts_of", "decode", "decode_texts", "encode",
           "interpolate", "iter_reconstruct", "iter_sample", "iter_transfer", "reconstruct",
           "sample", "texts_and_modes", "transfer", "with_names"]
