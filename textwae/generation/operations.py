"""What users do with a trained model: encode, sample modes, reconstruct, interpolate, transfer.

Each returns the texts and the mode of each code they were decoded from. Codes are decoded
`CHUNK` at a time, so memory stays flat in the number of outputs; the `iter_*` forms yield
each chunk's outputs as soon as it is decoded (the command line prints them as they come).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch

from textwae.errors import ConfigError, DataError
from textwae.generation.decoding import (
    DecodingConfig,
    casts_of,
    decode_texts,
    path_casts,
    with_names,
)
from textwae.models.autoencoder import TextWAE
from textwae.models.story import StoryModel
from textwae.objectives.codes import LatentOutput
from textwae.text.batching import chunks
from textwae.text.names import Cast

CHUNK = 64  # codes decoded at once
LANDED = 0.9  # p(mode | z) of a text, encoded again, at which it reads as that mode: a
#   sample is kept, a transfer's search ends. On Yelp transfers land 0.85 at BLEU 11.5 against
#   0.81 at 11.9 for 0.5 (the most likely mode)
Generated = tuple[list[str], list[int]]  # texts, and the mode of each one's code
Output = TypeVar("Output")  # what a code decodes into: a text, a story


def check_texts(texts: list[str]) -> None:
    """Texts to encode: at least one, none empty."""
    if not texts:
        raise DataError("no texts to encode")
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise DataError(f"text {empty[0] + 1} is empty: there is nothing to encode")


@torch.no_grad()
def encode(model: TextWAE, texts: list[str]) -> LatentOutput:
    """Posterior of each text (the mean is the code used for reconstruction)."""
    check_texts(texts)
    model.eval()
    device = next(model.parameters()).device
    batch = model.tokenize(texts).batch(list(range(len(texts)))).to(device)
    return model.encode(*batch.source)


def texts_and_modes(model: TextWAE, z: torch.Tensor, decoding: DecodingConfig,
                    generator: torch.Generator, casts: Sequence[Cast] | None = None) -> Generated:
    """What every generation command returns: the decoded texts (their names from `casts`,
    `with_names`) and each code's mode."""
    texts = with_names(model, decode_texts(model, z, decoding, generator), generator, casts)
    return texts, model.prior.assign(z).tolist()


def joined(parts: Iterator[Generated]) -> Generated:
    """The chunks of an `iter_*` function as one result."""
    texts: list[str] = []
    modes: list[int] = []
    for chunk_texts, chunk_modes in parts:
        texts += chunk_texts
        modes += chunk_modes
    return texts, modes


def whole_number(value: object, what: str, low: int) -> int:
    """`value` if it is an int (not a bool) of at least `low`; else a ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{what} must be a whole number >= {low}, got {value}")
    return value


def checked_redraws(model: TextWAE | StoryModel, redraws: int | None) -> int:
    """`redraws`, or the run's prior.sample_redraws if None: a whole number >= 0."""
    return whole_number(model.config.prior.sample_redraws if redraws is None else redraws,
                        "redraws", 0)


def iter_sample(model: TextWAE, n: int, decoding: DecodingConfig, mode: int | None = None,
                seed: int = 0, code_scale: float = 1.0,
                redraws: int | None = None) -> Iterator[Generated]:
    """`sample`, a chunk at a time; the arguments are checked at the call, before any output."""
    if n < 1:
        raise ConfigError(f"the number of samples must be at least 1, got {n}")
    if not 0 <= code_scale < math.inf:
        raise ConfigError(f"the code scale must be a finite number >= 0, got {code_scale}")
    if mode is not None:
        model.prior.check_component(mode)
    redraws = checked_redraws(model, redraws)
    return _iter_sampled(model, n, decoding, mode, torch.Generator().manual_seed(seed),
                         code_scale, redraws)


def _iter_sampled(model: TextWAE, n: int, decoding: DecodingConfig, mode: int | None,
                  generator: torch.Generator, code_scale: float,
                  redraws: int) -> Iterator[Generated]:
    for start in range(0, n, CHUNK):
        z = model.prior.sample(min(CHUNK, n - start), component=mode, generator=generator,
                               code_scale=code_scale)
        texts = decode_texts(model, z, decoding, generator)  # decoding draws after the codes
        redraw_astray(
            model, z, texts, mode, redraws,
            lambda count: model.prior.sample(count, component=mode, generator=generator,
                                             code_scale=code_scale),
            lambda codes: decode_texts(model, codes, decoding, generator),
            lambda outputs, wanted: reads_as(model, outputs, wanted,
                                             lambda again: encode(model, again).mean))
        yield with_names(model, texts, generator), model.prior.assign(z).tolist()


def redraw_astray(model: TextWAE | StoryModel, z: torch.Tensor, outputs: list[Output],
                  mode: int | None, redraws: int, draw: Callable[[int], torch.Tensor],
                  decode: Callable[[torch.Tensor], list[Output]],
                  reads: Callable[[list[Output], torch.Tensor], torch.Tensor]) -> None:
    """In place: each prior sample z (N, D) whose output `reads` (outputs, modes) says does
    not read as its mode (`mode`, else the one its code lies in) is drawn again (`draw`) and
    decoded again, for up to `redraws` rounds; the last draw stays. Sentences and stories
    alike."""
    for _ in range(redraws):
        wanted = model.prior.assign(z) if mode is None else torch.full((len(z),), mode)
        astray = (~reads(outputs, wanted)).nonzero()[:, 0]
        if not len(astray):
            return
        z[astray] = draw(len(astray)).to(z)
        for row, output in zip(astray.tolist(), decode(z[astray]), strict=True):
            outputs[row] = output


def sample(model: TextWAE, n: int, decoding: DecodingConfig, mode: int | None = None,
           seed: int = 0, code_scale: float = 1.0, redraws: int | None = None) -> Generated:
    """n texts decoded from prior samples (of one mode if given), with each sample's mode.

    A text that the model, encoding it again, does not place in its mode (`mode`, else that of
    the code it came from; `reads_as`) is drawn again up to `redraws` times (None: the
    run's prior.sample_redraws); the last draw stays. On Yelp 4 redraws took samples from
    0.90 / 0.935 to 0.97 / 0.99 in their mode (complaint / praise, the label judge), 0.985
    clean against 0.995 and as varied (benchmarks/latent_quality.py).

    `code_scale` below 1 draws codes nearer each mode's mean, where the training codes are
    densest: samples read as their mode more often and vary less (on the demo run, 0.8 read
    0.945-0.995 per mode against 0.875-0.98 at 1, with 72% distinct lines against 80%;
    benchmarks/latent_quality.py). 1 samples the model's prior itself."""
    return joined(iter_sample(model, n, decoding, mode, seed, code_scale, redraws))


def iter_reconstruct(model: TextWAE, texts: list[str], decoding: DecodingConfig,
                     seed: int = 0) -> Iterator[Generated]:
    """`reconstruct`, a chunk at a time; every text is checked before the first output."""
    check_texts(texts)
    generator = torch.Generator().manual_seed(seed)
    return (texts_and_modes(model, encode(model, chunk).mean, decoding, generator,
                            casts_of(model, chunk))
            for chunk in chunks(texts, CHUNK))


def reconstruct(model: TextWAE, texts: list[str], decoding: DecodingConfig,
                seed: int = 0) -> Generated:
    """Decode each text's own code."""
    return joined(iter_reconstruct(model, texts, decoding, seed))


def interpolate(model: TextWAE, start: str, end: str, steps: int, decoding: DecodingConfig,
                seed: int = 0) -> Generated:
    """Decode `steps` codes on the straight line from the code of `start` to that of `end`;
    the path keeps one cast of names, `start`'s (and `end`'s for roles `start` lacks)."""
    z = line_between(encode(model, [start, end]).mean, steps)
    generator = torch.Generator().manual_seed(seed)
    casts = path_casts(model, start, end, steps)
    return joined(texts_and_modes(model, part, decoding, generator,
                                  None if casts is None else casts[: len(part)])
                  for part in z.split(CHUNK))


def line_between(ends: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` evenly spaced codes (S, D) on the line from ends[0] to ends[1] (2, D)."""
    if steps < 2:
        raise ConfigError("interpolation needs at least 2 steps (the two ends)")
    weights = torch.linspace(0, 1, steps, device=ends.device)[:, None]  # (S, 1)
    return (1 - weights) * ends[0] + weights * ends[1]


def transfer_strength(model: TextWAE | StoryModel, strength: float | None = None) -> float:
    """The largest k a transfer moves by: `strength`, or the run's prior.transfer_strength
    when None. Refuses a k that is not a finite number >= 0."""
    if strength is None:
        return model.config.prior.transfer_strength
    if not (math.isfinite(strength) and strength >= 0):
        raise ConfigError(f"transfer strength must be finite and not negative, got {strength}")
    return strength


def transfer_strengths(model: TextWAE | StoryModel, strength: float | None = None,
                       steps: int | None = None) -> list[float]:
    """The strengths a transfer tries, smallest first: `steps` of them evenly spaced up to
    `transfer_strength` (None: the run's prior.transfer_steps); one step is that k alone."""
    largest = transfer_strength(model, strength)
    steps = whole_number(model.config.prior.transfer_steps if steps is None else steps,
                         "transfer strength steps", 1)
    return [largest * step / steps for step in range(1, steps + 1)]


def check_transfer(model: TextWAE | StoryModel, to_mode: int, strength: float | None = None,
                   steps: int | None = None) -> list[float]:
    """The strengths of a transfer to `to_mode` (`transfer_strengths`), after refusing a mode
    the prior does not have."""
    model.prior.check_component(to_mode)
    return transfer_strengths(model, strength, steps)


def transfer_codes(model: TextWAE | StoryModel, z: torch.Tensor, to_mode: int,
                   strength: float | None = None) -> torch.Tensor:
    """Codes (N, D) moved towards mode `to_mode`: z + k (mean_target - mean_source), where
    the source is each code's own (assigned) component and k is `transfer_strength`. k = 1
    puts the code as far from the target's mean as it was from its own (its offset, which
    carries the content, kept); k = 0 leaves it where it was; k between trades style for
    content."""
    model.prior.check_component(to_mode)
    k = transfer_strength(model, strength)
    means = model.prior.means
    return z + k * (means[to_mode] - means[model.prior.assign(z)])


def searched_transfer(model: TextWAE | StoryModel, z: torch.Tensor, to_mode: int,
                      strengths: list[float], decode: Callable[[torch.Tensor], list[Output]],
                      landed: Callable[[list[Output]], torch.Tensor],
                      ) -> tuple[list[Output], torch.Tensor]:
    """Each code (N, D) moved by the smallest of `strengths` whose output `landed` says reads
    as the target, else by the largest: every text moves only as far as it needs to, so one
    that lands early keeps more of itself. The outputs, and the codes (N, D) they came from."""
    outputs: list[Output | None] = [None] * len(z)
    chosen = z.clone()
    pending = torch.arange(len(z))
    for step, strength in enumerate(strengths):
        moved = transfer_codes(model, z[pending], to_mode, strength)
        decoded = decode(moved)
        last = step == len(strengths) - 1
        keep = torch.ones(len(decoded), dtype=torch.bool) if last else landed(decoded).cpu()
        for row, output, kept in zip(pending.tolist(), decoded, keep.tolist(), strict=True):
            if kept:
                outputs[row] = output
        chosen[pending[keep]] = moved[keep.to(moved.device)]
        pending = pending[~keep]
        if not len(pending):
            break
    return outputs, chosen  # type: ignore[return-value]


def reads_as(model: TextWAE | StoryModel, texts: list[str], modes: torch.Tensor,
             codes_of: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
    """Whether each text, encoded again (`codes_of`), lies in its mode of `modes` (N,):
    p(mode | z) >= LANDED. An empty text does not."""
    said = [i for i, text in enumerate(texts) if text.strip()]
    result = torch.zeros(len(texts), dtype=torch.bool)
    if said:
        z = codes_of([texts[i] for i in said])
        chances = model.prior.component_log_probs(z).softmax(dim=1)  # (n, K)
        wanted = modes[said].to(chances.device)[:, None]  # (n, 1)
        result[said] = (chances.gather(1, wanted)[:, 0] >= LANDED).cpu()
    return result


def in_mode(model: TextWAE | StoryModel, texts: list[str], mode: int,
            codes_of: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
    """`reads_as` with one mode for every text."""
    return reads_as(model, texts, torch.full((len(texts),), mode), codes_of)


def iter_transfer(model: TextWAE, texts: list[str], to_mode: int, decoding: DecodingConfig,
                  seed: int = 0, strength: float | None = None,
                  steps: int | None = None) -> Iterator[Generated]:
    """`transfer`, a chunk at a time; the arguments are checked at the call."""
    strengths = check_transfer(model, to_mode, strength, steps)
    check_texts(texts)
    generator = torch.Generator().manual_seed(seed)

    def moved(chunk: list[str]) -> Generated:
        outputs, codes = searched_transfer(
            model, encode(model, chunk).mean, to_mode, strengths,
            lambda z: decode_texts(model, z, decoding, generator),
            lambda decoded: in_mode(model, decoded, to_mode,
                                    lambda again: encode(model, again).mean))
        return (with_names(model, outputs, generator, casts_of(model, chunk)),
                model.prior.assign(codes).tolist())

    return (moved(chunk) for chunk in chunks(texts, CHUNK))


def transfer(model: TextWAE, texts: list[str], to_mode: int, decoding: DecodingConfig,
             seed: int = 0, strength: float | None = None,
             steps: int | None = None) -> Generated:
    """Rewrite texts into another mode by offset arithmetic (`transfer_codes`): each code moves
    k times the step from its own component's mean to the target's, k the smallest of
    `transfer_strengths` at which its text, encoded again, lies in the target mode
    (`searched_transfer`). On Yelp (D 64) strengths up to 2.5 in 10 steps put 0.85 of
    held-out sentences in the target at BLEU 11.5 to the input, where one k of 1.5 put 0.75
    at 12.0 and one of 2 0.87 at 7.8 (benchmarks/latent_quality.py)."""
    return joined(iter_transfer(model, texts, to_mode, decoding, seed, strength, steps))
