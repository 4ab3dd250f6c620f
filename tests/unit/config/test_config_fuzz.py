"""Any override drawn from the schema either loads or fails with the user-error base."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from textwae.config.loading import all_keys, load_config
from textwae.errors import TextWAEError

KEYS = all_keys()
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(
        ["", "cpu", "cuda", "cuda:7", "mps", "gru", "transformer", "gaussian", "mmd", "kl", "gan",
         "imq", "bf16", "sentence", "story", "hf", "/nonexistent", "data/stories.jsonl"]),
    st.text(max_size=8))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(
    st.text(max_size=4), SCALARS, max_size=2))


def as_yaml(value) -> str:
    """A value as a key=value override writes it (YAML flow style)."""
    if isinstance(value, float) and math.isnan(value):
        return ".nan"
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)  # quoted: YAML reads it back as this string
    if isinstance(value, list):
        return "[" + ", ".join(as_yaml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {as_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), VALUES),
                min_size=1, max_size=4))
def test_random_overrides_load_or_raise_a_user_error(pairs):
    overrides = [f"{key}={as_yaml(value)}" for key, value in pairs]
    try:
        config = load_config(overrides=overrides)
    except TextWAEError:
        return
    config.check()  # what loaded is valid, and stays so when checked again
