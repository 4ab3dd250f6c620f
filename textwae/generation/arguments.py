"""The checks of what a caller hands the generation core, made once per call where it enters
(the Python API's functions and `DecodingConfig`; the command line goes through them): a
wrong type, or a number that is not finite or lies outside `GENERATION_LIMITS`, is a
`ConfigError` that names it and its range, instead of an error from deep inside torch or an
allocation that never ends."""

from __future__ import annotations

import math
import numbers

from textwae.config.schema import GENERATION_LIMITS
from textwae.errors import ConfigError

SHOWN_CHARS = 40  # of a value in an error message


def shown(value: object) -> str:
    """`value` as an error message shows it: short, whatever it is (a huge int is not
    printed: it may have more digits than Python prints)."""
    if isinstance(value, int) and value.bit_length() > 100:
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS - 3]}..."


def whole_number(value: object, what: str, limit: str) -> int:
    """`value` as an int, if it is a whole number (not a bool) within
    GENERATION_LIMITS[limit]."""
    low, high = (int(bound) for bound in GENERATION_LIMITS[limit])
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{what} must be a whole number >= {low} and at most {high}, "
                          f"got {shown(value)}")
    if value < low:
        raise ConfigError(f"{what} must be a whole number >= {low}, got {shown(value)}")
    if value > high:
        raise ConfigError(f"{what} must be at most {high}, got {shown(value)}")
    return int(value)


def real_number(value: object, what: str, limit: str, low_open: bool = False) -> float:
    """`value` as a float, if it is a finite number (not a bool) within
    GENERATION_LIMITS[limit] (its low end excluded when `low_open`)."""
    low, high = GENERATION_LIMITS[limit]
    above = f"> {low:g}" if low_open else f">= {low:g}"
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not (isinstance(value, numbers.Integral) or math.isfinite(value))):
        raise ConfigError(f"{what} must be a finite number {above} and at most {high:g}, "
                          f"got {shown(value)}")
    if value < low or (low_open and value == low):
        raise ConfigError(f"{what} must be a finite number {above}, got {shown(value)}")
    if value > high:
        raise ConfigError(f"{what} must be at most {high:g}, got {shown(value)}")
    return float(value)
