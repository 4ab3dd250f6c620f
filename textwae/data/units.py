"""Units of a corpus (whole records, or their sentences) and the one hash coin that splits them.

Every subset the project draws (the validation hold-out, in memory or streamed, and the
labelled share of label-guided modes) is decided by `hash_coin`: a coin fixed by a purpose,
the seed and the text, so the same `split_seed` holds out the same records whether the corpus
is read whole or as a stream, in any order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from textwae.data.records import Example
from textwae.errors import DataError

# Sentence boundaries, good enough for English and deliberately simple:
#  - `.`, `!` or `?` (optionally followed by a closing quote or bracket), then whitespace,
#    then an uppercase letter, digit or opening quote: "It rained. Then ..." -- unless the
#    full stop ends a title such as "Mr." (names follow titles in stories);
#  - a lone `.`, `!` or `?` token between spaces, as in lowercased tokenised corpora:
#    "the food was great . i loved it ."
# Abbreviations other than titles, initials and decimal points in tokenised text may split.
TITLES = ("Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "St.", "Jr.", "Sr.")
SENTENCE_BOUNDARY = re.compile(
    "".join(rf"(?<!\b{re.escape(title)})" for title in TITLES)
    + r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=[\"'“‘(\[]?[A-Z0-9])"
    + r"|(?<=\s[.!?])\s+"
)


def split_sentences(text: str) -> list[str]:
    """Split one record into sentences with `SENTENCE_BOUNDARY` (see its comment)."""
    return [part for part in (s.strip() for s in SENTENCE_BOUNDARY.split(text)) if part]


UNIT_SPLITTERS: dict[str, Callable[[str], list[str]]] = {
    "story": lambda text: [text],
    "sentence": split_sentences,
}


def record_units(record: Example, unit: str) -> list[Example]:
    """Units of one record (`unit`: story | sentence). A sentence takes its own label where
    the record has one per sentence (`Example.sentence_labels`), else the record's."""
    parts = UNIT_SPLITTERS[unit](record.text)
    if unit != "sentence" or record.sentence_labels is None:
        return [Example(part, record.label) for part in parts]
    if len(record.sentence_labels) != len(parts):
        raise DataError(f"a record has {len(parts)} sentences but "
                        f"{len(record.sentence_labels)} sentence labels "
                        f"(data.sentence_label_field): {record.text[:60]!r}")
    return [Example(part, label) for part, label in zip(parts, record.sentence_labels,
                                                        strict=True)]


def to_units(records: list[Example], unit: str) -> list[Example]:
    """Units of `records`, in order (see `record_units`)."""
    return [part for record in records for part in record_units(record, unit)]


def coin_value(purpose: str, seed: int, text: str) -> float:
    """A number in [0, 1) fixed by the purpose ("valid", "label"), the seed and the text."""
    key = f"{purpose}:{seed}:{text}".encode("utf-8", errors="surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


def hash_coin(purpose: str, seed: int, text: str, probability: float) -> bool:
    """True for a share `probability` of texts, in expectation: the same texts every time."""
    return coin_value(purpose, seed, text) < probability


def split_train_valid(records: list[Example], fraction: float,
                      seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out the records whose "valid" coin falls under `fraction`, as a stream does; both
    parts keep the corpus order.

    Copies of one text share a coin, so they always fall on the same side: a held-out text is
    never also trained on. A small corpus whose coins put every text on one side moves the
    text with the smallest (or largest) coin across, all its copies with it, so that neither
    part is empty; a corpus of one distinct text cannot be split.
    """
    coins = {record.text: coin_value("valid", seed, record.text) for record in records}
    if len(coins) < 2:
        raise DataError(f"cannot hold out a validation split from {len(records)} record(s) of "
                        f"{len(coins)} distinct text(s): a held-out text would also be trained "
                        "on; add data or set data.valid")
    held = {value for value in coins.values() if value < fraction}
    if not held:
        held = {min(coins.values())}
    if len(held) == len(coins):
        held.remove(max(coins.values()))
    train = [record for record in records if coins[record.text] not in held]
    valid = [record for record in records if coins[record.text] in held]
    return train, valid
