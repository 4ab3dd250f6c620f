"""What users do with a trained model: sample modes, reconstruct, interpolate, transfer.

Written once over a `Level` (`textwae.generation.levels`): each function takes a sentence
model, a story run (their levels by `level_of`) or a level, and returns the outputs (texts,
or stories) and the mode of each code they were decoded from. Codes are decoded `CHUNK` at a
time, so memory stays flat in the number of outputs; the `iter_*` forms yield each chunk's
outputs as soon as it is decoded (the command line prints them as they come).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import torch

from textwae.data.labels import resolve_mode
from textwae.errors import ConfigError
from textwae.generation.arguments import real_number, shown, whole_number
from textwae.generation.decoding import DecodingConfig, check_decoding, path_casts
from textwae.generation.levels import Level, SentenceLevel
from textwae.generation.stories import StoryLevel
from textwae.models.autoencoder import TextWAE
from textwae.models.reading import check_texts, lands
from textwae.models.story import StoryRun
from textwae.text.batching import chunks
from textwae.text.names import Cast

CHUNK = 64  # codes decoded at once
Generated = tuple[list[Any], list[int]]  # outputs (texts or stories), and each one's mode
Source = TextWAE | StoryRun | Level  # what the operations generate from

# the level of each kind of loaded run
LEVELS: dict[type, type] = {TextWAE: SentenceLevel, StoryRun: StoryLevel}
# what the core uses of a level (`Level`: all but the command line's `record`)
LEVEL_MEMBERS = ("prior", "labels", "settings", "encode", "decode", "text", "casts",
                 "fill_names")


def level_of(source: Source) -> Level:
    """The level of a loaded run (`LEVELS`, by its type); a level is its own. Anything else
    is refused."""
    for kind in type(source).__mro__:
        if kind in LEVELS:
            return LEVELS[kind](source)
    if not all(hasattr(source, member) for member in LEVEL_MEMBERS):
        raise ConfigError(f"generation needs a loaded run: TextWAE.from_pretrained(run) or "
                          f"StoryRun.from_pretrained(run), not {shown(source)}")
    return source  # type: ignore[return-value]


def collect(parts: Iterator[Generated]) -> Generated:
    """The chunks of an `iter_*` function as one result."""
    outputs: list[Any] = []
    modes: list[int] = []
    for chunk_outputs, chunk_modes in parts:
        outputs += chunk_outputs
        modes += chunk_modes
    return outputs, modes


def mode_index(level: Level, mode: object) -> int:
    """A mode given as a label (`resolve_mode`, as the command line reads one) or as an
    index of the level's prior."""
    if isinstance(mode, str):
        return resolve_mode(mode, level.labels, level.prior.components)
    if isinstance(mode, bool) or not isinstance(mode, numbers.Integral):
        raise ConfigError(f"a mode must be a label or an index, got {shown(mode)}")
    level.prior.check_component(int(mode))
    return int(mode)


def seeded(seed: object) -> torch.Generator:
    """The random generator of a call, from its seed."""
    return torch.Generator().manual_seed(whole_number(seed, "the seed", "seed"))


def _decode_named(level: Level, z: torch.Tensor, decoding: DecodingConfig,
                  generator: torch.Generator, casts: list[Cast] | None = None) -> Generated:
    """The outputs of codes z (N, D) with their names (from `casts`), and each code's mode."""
    outputs = level.fill_names(level.decode(z, decoding, generator), generator, casts)
    return outputs, level.prior.assign(z).tolist()


def iter_sample(source: Source, n: int, decoding: DecodingConfig,
                mode: int | str | None = None, seed: int = 0, code_scale: float = 1.0,
                redraws: int | None = None) -> Iterator[Generated]:
    """`sample`, a chunk at a time; the arguments are checked at the call, before any output."""
    level = level_of(source)
    n = whole_number(n, "the number of samples", "samples")
    check_decoding(decoding)
    mode = None if mode is None else mode_index(level, mode)
    generator = seeded(seed)
    code_scale = real_number(code_scale, "the code scale", "code_scale")
    redraws = whole_number(level.settings.sample_redraws if redraws is None else redraws,
                           "redraws", "sample_redraws")
    return _iter_sampled(level, n, decoding, mode, generator, code_scale, redraws)


def _iter_sampled(level: Level, n: int, decoding: DecodingConfig, mode: int | None,
                  generator: torch.Generator, code_scale: float,
                  redraws: int) -> Iterator[Generated]:
    for start in range(0, n, CHUNK):
        z = level.prior.sample(min(CHUNK, n - start), component=mode, generator=generator,
                               code_scale=code_scale)
        outputs = level.decode(z, decoding, generator)  # decoding draws after the codes
        for _ in range(redraws):
            if not redraw_astray(level, z, outputs, mode, decoding, generator, code_scale):
                break
        yield level.fill_names(outputs, generator, None), level.prior.assign(z).tolist()


def redraw_astray(level: Level, z: torch.Tensor, outputs: list[Any], mode: int | None,
                  decoding: DecodingConfig, generator: torch.Generator,
                  code_scale: float) -> bool:
    """In place: each prior sample z (N, D) whose output does not read as its mode (`mode`,
    else the one its code lies in; `reads_as`) is drawn again and decoded again. Whether any
    was."""
    wanted = level.prior.assign(z) if mode is None else torch.full((len(z),), mode)
    astray = (~reads_as(level, outputs, wanted)).nonzero()[:, 0]
    if not len(astray):
        return False
    z[astray] = level.prior.sample(len(astray), component=mode, generator=generator,
                                   code_scale=code_scale).to(z)
    for row, output in zip(astray.tolist(), level.decode(z[astray], decoding, generator),
                           strict=True):
        outputs[row] = output
    return True


def sample(source: Source, n: int, decoding: DecodingConfig, mode: int | str | None = None,
           seed: int = 0, code_scale: float = 1.0, redraws: int | None = None) -> Generated:
    """n outputs decoded from prior samples (of one mode, a label or an index, if given), with
    each sample's mode.

    An output that the model, encoding it again, does not place in its mode (`mode`, else
    that of the code it came from; `reads_as`) is drawn again up to `redraws` times (None:
    the run's generation.sample_redraws); the last draw stays.

    `code_scale` below 1 draws codes nearer each mode's mean, where the training codes are
    densest: samples read as their mode more often and vary less
    (docs/results.md#code-scale). 1 samples the model's prior itself."""
    return collect(iter_sample(source, n, decoding, mode, seed, code_scale, redraws))


def iter_reconstruct(source: Source, texts: list[str], decoding: DecodingConfig,
                     seed: int = 0) -> Iterator[Generated]:
    """`reconstruct`, a chunk at a time; every text is checked before the first output."""
    level = level_of(source)
    check_texts(texts)
    check_decoding(decoding)
    generator = seeded(seed)
    return (_decode_named(level, level.encode(chunk), decoding, generator, level.casts(chunk))
            for chunk in chunks(texts, CHUNK))


def reconstruct(source: Source, texts: list[str], decoding: DecodingConfig,
                seed: int = 0) -> Generated:
    """Decode each text's own code; an output keeps its input's names."""
    return collect(iter_reconstruct(source, texts, decoding, seed))


def iter_interpolate(source: Source, start: str, end: str, steps: int,
                     decoding: DecodingConfig, seed: int = 0) -> Iterator[Generated]:
    """`interpolate`, a chunk of the path at a time; the arguments are checked at the call."""
    level = level_of(source)
    check_texts([start, end])
    steps = whole_number(steps, "interpolation steps (the two ends included)", "steps")
    check_decoding(decoding)
    generator = seeded(seed)
    ends = level.encode([start, end])
    casts = path_casts(level.casts([start, end]), CHUNK)
    return (_decode_named(level, line_between(ends, steps, first, min(first + CHUNK, steps)),
                          decoding, generator,
                          None if casts is None else casts[: min(CHUNK, steps - first)])
            for first in range(0, steps, CHUNK))


def interpolate(source: Source, start: str, end: str, steps: int, decoding: DecodingConfig,
                seed: int = 0) -> Generated:
    """Decode `steps` codes on the straight line from the code of `start` to that of `end`;
    the path keeps one cast of names, `start`'s (and `end`'s for roles `start` lacks)."""
    return collect(iter_interpolate(source, start, end, steps, decoding, seed))


def line_between(ends: torch.Tensor, steps: int, first: int, stop: int) -> torch.Tensor:
    """Codes first .. stop - 1 (stop - first, D) of `steps` evenly spaced on the line from
    ends[0] to ends[1] (2, D): a part of the path, however long the whole."""
    weights = (torch.arange(first, stop, device=ends.device) / (steps - 1))[:, None]  # (S, 1)
    return (1 - weights) * ends[0] + weights * ends[1]


def transfer_strength(source: Source, strength: float | None = None) -> float:
    """The largest k a transfer moves by: `strength`, or the run's
    generation.transfer_strength when None. Refuses a k that is not a finite number >= 0 and
    within GENERATION_LIMITS."""
    if strength is None:
        return level_of(source).settings.transfer_strength
    return real_number(strength, "the transfer strength", "transfer_strength")


def transfer_strengths(source: Source, strength: float | None = None,
                       steps: int | None = None) -> list[float]:
    """The strengths a transfer tries, smallest first: `steps` of them evenly spaced up to
    `transfer_strength` (None: the run's generation.transfer_steps); one step is that k."""
    largest = transfer_strength(source, strength)
    steps = whole_number(level_of(source).settings.transfer_steps if steps is None else steps,
                         "transfer strength steps", "transfer_steps")
    return [largest * step / steps for step in range(1, steps + 1)]


def transfer_codes(source: Source, z: torch.Tensor, to_mode: int,
                   strength: float | None = None) -> torch.Tensor:
    """Codes (N, D) moved towards mode `to_mode`: z + k (mean_target - mean_source), where
    the source is each code's own (assigned) component and k is `transfer_strength`. k = 1
    puts the code as far from the target's mean as it was from its own (its offset, which
    carries the content, kept); k = 0 leaves it where it was; k between trades style for
    content."""
    prior = level_of(source).prior
    prior.check_component(to_mode)
    k = transfer_strength(source, strength)
    return z + k * (prior.means[to_mode] - prior.means[prior.assign(z)])


def searched_transfer(source: Source, z: torch.Tensor, to_mode: int, strengths: list[float],
                      decoding: DecodingConfig, generator: torch.Generator,
                      ) -> tuple[list[Any], torch.Tensor]:
    """Each code (N, D) moved by the smallest of `strengths` whose output reads as the target
    (`in_mode`), else by the largest: every text moves only as far as it needs to, so one
    that lands early keeps more of itself. The outputs, and the codes (N, D) they came from."""
    level = level_of(source)
    outputs: list[Any] = [None] * len(z)
    chosen = z.clone()
    pending = torch.arange(len(z))
    for step, strength in enumerate(strengths):
        moved = transfer_codes(level, z[pending], to_mode, strength)
        decoded = level.decode(moved, decoding, generator)
        last = step == len(strengths) - 1
        keep = (torch.ones(len(decoded), dtype=torch.bool) if last
                else in_mode(level, decoded, to_mode))
        for row, output, kept in zip(pending.tolist(), decoded, keep.tolist(), strict=True):
            if kept:
                outputs[row] = output
        chosen[pending[keep]] = moved[keep.to(moved.device)]
        pending = pending[~keep]
        if not len(pending):
            break
    return outputs, chosen


def reads_as(source: Source, outputs: list[Any], modes: torch.Tensor) -> torch.Tensor:
    """Whether each output, encoded again, lies in its mode of `modes` (N,):
    p(mode | z) >= LANDED (`lands`). An empty output does not."""
    level = level_of(source)
    texts = [level.text(output) for output in outputs]
    said = [i for i, text in enumerate(texts) if text.strip()]
    result = torch.zeros(len(texts), dtype=torch.bool)
    if said:
        result[said] = lands(level.prior, level.encode([texts[i] for i in said]),
                             modes[said]).cpu()
    return result


def in_mode(source: Source, outputs: list[Any], mode: int) -> torch.Tensor:
    """`reads_as` with one mode for every output."""
    return reads_as(source, outputs, torch.full((len(outputs),), mode))


def iter_transfer(source: Source, texts: list[str], to_mode: int | str,
                  decoding: DecodingConfig, seed: int = 0, strength: float | None = None,
                  steps: int | None = None) -> Iterator[Generated]:
    """`transfer`, a chunk at a time; the arguments are checked at the call."""
    level = level_of(source)
    to_mode = mode_index(level, to_mode)
    strengths = transfer_strengths(level, strength, steps)
    check_texts(texts)
    check_decoding(decoding)
    generator = seeded(seed)
    return (_transferred(level, chunk, to_mode, strengths, decoding, generator)
            for chunk in chunks(texts, CHUNK))


def _transferred(level: Level, texts: list[str], to_mode: int, strengths: list[float],
                 decoding: DecodingConfig, generator: torch.Generator) -> Generated:
    outputs, codes = searched_transfer(level, level.encode(texts), to_mode, strengths,
                                       decoding, generator)
    return (level.fill_names(outputs, generator, level.casts(texts)),
            level.prior.assign(codes).tolist())


def transfer(source: Source, texts: list[str], to_mode: int | str, decoding: DecodingConfig,
             seed: int = 0, strength: float | None = None,
             steps: int | None = None) -> Generated:
    """Rewrite texts into another mode (a label or an index) by offset arithmetic
    (`transfer_codes`): each code moves k times the step from its own component's mean to the
    target's, k the smallest of `transfer_strengths` at which its output, encoded again, lies
    in the target mode (`searched_transfer`): a text that lands after a short move keeps more
    of itself (docs/results.md#transfer-strength)."""
    return collect(iter_transfer(source, texts, to_mode, decoding, seed, strength, steps))
