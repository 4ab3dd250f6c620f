"""What the explorer page does with a model, as plain functions that return data.

Each goes through the public generation API (encode, sample, reconstruct, interpolate,
transfer) with the page's decoding settings and seed, so the page shows what the command line
prints; each result carries the `generate.py` line that prints the same texts. Bad input
raises a `TextWAEError` whose message the page shows.
"""

from __future__ import annotations

import math
import reprlib
import shlex
from dataclasses import dataclass

from textwae.data.labels import resolve_mode
from textwae.errors import ConfigError, DataError
from textwae.explore.latent_map import LatentMap
from textwae.generation import DecodingConfig, encode, interpolate, reconstruct, sample, transfer
from textwae.generation.operations import transfer_strength
from textwae.models.autoencoder import TextWAE

MAX_TEXT_CHARS = 1000  # longer typed texts are refused: the model reads data.max_length tokens
MAX_SAMPLES = 50  # samples per request at most
MAX_STEPS = 50  # interpolation steps at most


@dataclass(frozen=True)
class Explorer:
    """What every action needs: the model, its map, and the run directory as the user gave it
    (for the equivalent command lines)."""

    model: TextWAE
    map: LatentMap
    run: str


@dataclass(frozen=True)
class Decoded:
    text: str
    mode: int
    mode_name: str


@dataclass(frozen=True)
class Encoded:
    """A typed text: where it sits, its reconstruction and its transfer to every other mode."""

    text: str
    mode_name: str
    xy: tuple[float, float]
    reconstruction: Decoded
    transfers: list[Decoded]  # one per other mode, in mode order (`mode`: the target)
    commands: list[str]


@dataclass(frozen=True)
class Interpolation:
    """The decoded straight line between two texts' codes, and where its steps lie."""

    steps: list[Decoded]
    xy: list[tuple[float, float]]
    command: str


@dataclass(frozen=True)
class Samples:
    mode_name: str
    samples: list[Decoded]
    command: str


@dataclass(frozen=True)
class Point:
    """A held-out unit of the map, decoded greedily from its code and sampled a few times."""

    index: int
    text: str
    label: str | None
    mode_name: str
    greedy: Decoded
    samples: list[Decoded]
    commands: list[str]


def decoding_config(greedy: bool, temperature: float, top_p: float,
                    max_length: int = 64) -> DecodingConfig:
    """The page's decoding controls; a bad value raises ConfigError."""
    return DecodingConfig(greedy=bool(greedy), temperature=float(temperature),
                          top_p=float(top_p), max_length=int(max_length))


def check_text(text: str | None, what: str = "the text") -> str:
    """A typed text, stripped; empty, not text or longer than MAX_TEXT_CHARS raises
    DataError."""
    if not isinstance(text, str | None):
        raise DataError(f"{what} must be text, got {reprlib.repr(text)}")
    text = (text or "").strip()
    if not text:
        raise DataError(f"{what} is empty: type a sentence")
    if len(text) > MAX_TEXT_CHARS:
        raise DataError(f"{what} is {len(text):,} characters long; the explorer takes at most "
                        f"{MAX_TEXT_CHARS:,} (the model reads only its first tokens)")
    return text


def check_number(value: object, what: str, low: float, high: float) -> float:
    """A field's value as sent (a request can hold any JSON: text, NaN, 1e30), as a float in
    [low, high]; anything else raises ConfigError."""
    if not (_is_finite(value) and low <= value <= high):
        raise ConfigError(f"{what} must be a number from {low:g} to {high:g}, got "
                          f"{reprlib.repr(value)}")
    return float(value)


def check_count(value: object, what: str, low: int, high: int) -> int:
    """A field's value as sent, as a whole number in [low, high]; else ConfigError."""
    if not (_is_finite(value) and int(value) == value and low <= value <= high):
        raise ConfigError(f"{what} must be a whole number from {low} to {high}, got "
                          f"{reprlib.repr(value)}")
    return int(value)


def _is_finite(value: object) -> bool:
    """An int or a finite float; not a bool, which JSON and Python let pass for 0 and 1."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def resolve(explorer: Explorer, value: str | int | None) -> int:
    """A mode from a label or an index as typed or chosen; unknown raises ConfigError."""
    value = "" if value is None else str(value).strip()
    if not value:
        raise ConfigError("choose a mode: a label or an index")
    prior = explorer.model.prior
    return resolve_mode(value, explorer.model.config.prior.labels, prior.components)


def encode_text(explorer: Explorer, text: str | None, decoding: DecodingConfig,
                seed: int = 0, strength: float | None = None) -> Encoded:
    """Encode a typed text; reconstruct it and transfer it to every other mode with the
    transfer command's largest `strength` (None: the run's generation.transfer_strength) and
    the run's strength steps."""
    text = check_text(text)
    model, names = explorer.model, explorer.map.mode_names
    strength = transfer_strength(model, strength)
    code = encode(model, [text]).mean  # (1, D)
    mode = int(model.prior.assign(code)[0])
    rebuilt, rebuilt_modes = reconstruct(model, [text], decoding, seed)
    transfers = []
    for target in range(model.prior.components):
        if target != mode:
            moved, _ = transfer(model, [text], target, decoding, seed, strength)
            transfers.append(Decoded(moved[0], target, names[target]))
    x, y = explorer.map.project(code)[0].tolist()
    commands = [command(explorer, "reconstruct", [text], decoding, seed)] + [
        command(explorer, "transfer", ["--to", str(moved.mode), "--strength", f"{strength:g}",
                                       text], decoding, seed)
        for moved in transfers]
    return Encoded(text=text, mode_name=names[mode], xy=(x, y),
                   reconstruction=Decoded(rebuilt[0], rebuilt_modes[0], names[rebuilt_modes[0]]),
                   transfers=transfers, commands=commands)


def interpolate_texts(explorer: Explorer, start: str | None, end: str | None, steps: float,
                      decoding: DecodingConfig, seed: int = 0) -> Interpolation:
    """Decode `steps` codes from the code of `start` to that of `end`, and place them."""
    start, end = check_text(start, "the first text"), check_text(end, "the second text")
    steps = check_count(steps, "the number of steps", 2, MAX_STEPS)
    texts, modes = interpolate(explorer.model, start, end, steps, decoding, seed)
    ends = explorer.map.project(encode(explorer.model, [start, end]).mean)  # (2, 2)
    # the projection is affine, so the steps of the straight latent path lie evenly on the
    # segment between the ends' points
    xy = [tuple(((1 - i / (steps - 1)) * ends[0] + i / (steps - 1) * ends[1]).tolist())
          for i in range(steps)]
    names = explorer.map.mode_names
    return Interpolation(steps=[Decoded(t, m, names[m]) for t, m in zip(texts, modes, strict=True)],
                xy=xy, command=command(explorer, "interpolate", [start, end, "--steps",
                                                                 str(steps)], decoding, seed))


def sample_mode(explorer: Explorer, mode: str | int | None, n: float, decoding: DecodingConfig,
                seed: int = 0, code_scale: float = 1.0) -> Samples:
    """n texts decoded from prior samples of one mode, codes at `code_scale` times its spread."""
    chosen = resolve(explorer, mode)
    n = check_count(n, "the number of samples", 1, MAX_SAMPLES)
    code_scale = float(code_scale)
    texts, modes = sample(explorer.model, n, decoding, mode=chosen, seed=seed,
                          code_scale=code_scale)
    names = explorer.map.mode_names
    scale = [] if code_scale == 1 else ["--code-scale", f"{code_scale:g}"]
    return Samples(mode_name=names[chosen],
                   samples=[Decoded(t, m, names[m]) for t, m in zip(texts, modes, strict=True)],
                   command=command(explorer, "sample", ["--n", str(n), "--mode", str(chosen),
                                                        *scale], decoding, seed))


def decode_point(explorer: Explorer, index: int, n: int, decoding: DecodingConfig,
                 seed: int = 0) -> Point:
    """The map's unit `index`: its code decoded greedily, and `n` samples with `decoding`.

    Decoding a held-out unit's code is reconstructing its text, so this is `reconstruct`.
    """
    lmap = explorer.map
    if not 0 <= index < len(lmap.texts):
        raise DataError(f"there is no point {index} on the map")
    text, names = lmap.texts[index], lmap.mode_names
    greedy = DecodingConfig(greedy=True, max_length=decoding.max_length)
    best, best_modes = reconstruct(explorer.model, [text], greedy)
    drawn, drawn_modes = reconstruct(explorer.model, [text] * n, decoding, seed)
    return Point(index=index, text=text, label=lmap.labels[index],
                 mode_name=names[lmap.modes[index]],
                 greedy=Decoded(best[0], best_modes[0], names[best_modes[0]]),
                 samples=[Decoded(t, m, names[m]) for t, m in zip(drawn, drawn_modes,
                                                                   strict=True)],
                 commands=[command(explorer, "reconstruct", [text], greedy, 0),
                           command(explorer, "reconstruct", [text] * n, decoding, seed)])


def command(explorer: Explorer, name: str, args: list[str], decoding: DecodingConfig,
            seed: int) -> str:
    """The `generate.py` line that prints the same texts."""
    flags = ["--greedy"] if decoding.greedy else [
        "--temperature", f"{decoding.temperature:g}", "--top-p", f"{decoding.top_p:g}"]
    if decoding.max_length != DecodingConfig.max_length:
        flags += ["--max-length", str(decoding.max_length)]
    if not decoding.greedy:
        flags += ["--seed", str(seed)]
    return shlex.join(["python", "generate.py", name, "--model", explorer.run, *args, *flags])
