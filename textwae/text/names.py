"""Character names as roles, so that a generated story keeps its names (Fan et al., 2019).

A story run decodes every sentence from its own code. Trained on ROCStories, where nearly
every story has a protagonist of its own, the sentence model gives each sentence a name of its
own ("Eliza was scared of the office. Sophie liked Netflix."). With `data.mask_names`, each
character name of a text becomes a role before tokenising: <f1> is the first woman's name the
text mentions, <m2> the second man's. Decoded roles are then filled with names of the training
split: one name per role for a whole story, or the input's own names where there is an input
(a reconstruction, a transfer).

A name is a first name of the 1990 US census lists (the `names` package ships them), which the
training split writes capitalised at least `CAPITALISED` times as often as in lower case, so
"will", "may" and "rose" stay words, and which is not a day or a month ("Sunday", "June").
Its sex is the list it is more common in. Places the lists share ("Florida", "India") are
taken for names: rare in stories, and simpler than a gazetteer.

Each sentence of a story is decoded from its own code, which does not know the story's cast,
so a sentence can open with "She" in a story whose only character is a man
(`pronoun_clashes` finds those, by roles or by census names; story sampling decodes them
again).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import yaml

from textwae.config.loading import parse_yaml
from textwae.errors import DataError, RunDirectoryError

ROLES_PER_SEX = 4  # names past a text's fourth woman (man) stay as they are
ROLE = re.compile(r"<([fm])([1-9])>")
WORD = re.compile(r"\b[A-Za-z]+\b")
WORD_OR_ROLE = re.compile(r"<[fm][1-9]>|\b[A-Za-z]+\b")
PRONOUN_SEX = {"He": "m", "His": "m", "Him": "m", "She": "f", "Her": "f"}  # opening a sentence
CAPITALISED = 2  # capitalised / lower-case uses at which a census first name is a name here
CENSUS_LISTS = {"f": "dist.female.first", "m": "dist.male.first"}
CALENDAR = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
            "January", "February", "March", "April", "May", "June", "July", "August",
            "September", "October", "November", "December"}

Cast = dict[str, str]  # role -> the name it stands for


@functools.cache
def census_first_names() -> dict[str, str]:
    """Each census first name ("Mary") -> the sex whose list gives it the larger share (read
    once; not to be changed)."""
    shares: dict[str, tuple[float, str]] = {}
    for sex, file in CENSUS_LISTS.items():
        for line in resources.files("names").joinpath(file).read_text().splitlines():
            name, share = line.split()[:2]
            name = name.title()
            if float(share) > shares.get(name, (-1.0, ""))[0]:
                shares[name] = (float(share), sex)
    return {name: sex for name, (_, sex) in shares.items()}


def roles() -> list[str]:
    """Every role, for the tokenizer to keep each one a single piece."""
    return [f"<{sex}{i}>" for sex in CENSUS_LISTS for i in range(1, ROLES_PER_SEX + 1)]


def role_sex(word: str) -> str | None:
    """The sex of a role ("<f1>": "f"); None for any other word."""
    role = ROLE.fullmatch(word)
    return role.group(1) if role else None


def census_sex(word: str) -> str | None:
    """The sex of a census first name ("Maria": "f") that is not a day or a month; None for
    any other word. For text whose names are not roles, where no corpus says which
    capitalised words are names ("Will" is taken for one)."""
    return None if word in CALENDAR else census_first_names().get(word)


def pronoun_clashes(sentences: list[str], sex_of: Callable[[str], str | None]) -> list[int]:
    """The sentences of a story (their indexes) that open with a pronoun of one sex (He, His,
    Him; She, Her) where every character the sentences before it name is of the other sex:
    "Tim won the race. She cried." `sex_of` gives a word's sex (`role_sex` for masked text, a
    table of names for filled text), None where the word names nobody."""
    clashes: list[int] = []
    named: set[str] = set()
    for index, sentence in enumerate(sentences):
        words = WORD_OR_ROLE.findall(sentence)
        opening = PRONOUN_SEX.get(words[0]) if words else None
        if opening is not None and named and opening not in named:
            clashes.append(index)
        named |= {sex for word in words if (sex := sex_of(word)) is not None}
    return clashes


@dataclass
class Names:
    """The character names of a corpus: name -> sex ("f" | "m"), and how often it is used."""

    sexes: dict[str, str]
    counts: dict[str, int]

    @classmethod
    def learn(cls, texts: Iterable[str]) -> Names:
        """The census first names that `texts` (the training split) use as names."""
        words = Counter(word for text in texts for word in WORD.findall(text))
        census = census_first_names()
        found = {word: census[word] for word, count in words.items()
                 if word in census and word not in CALENDAR
                 and count >= CAPITALISED * words[word.lower()]}
        if not found:
            raise DataError("data.mask_names: the training split uses no census first name "
                            "as a name; there is nothing to mask")
        return cls(found, {name: words[name] for name in found})

    def mask(self, text: str) -> tuple[str, Cast]:
        """`text` with its names replaced by roles, and the cast (role -> name)."""
        cast: Cast = {}
        role_of: dict[str, str] = {}

        def role(match: re.Match) -> str:
            name = match.group(0)
            sex = self.sexes.get(name)
            if sex is None:
                return name
            if name not in role_of:
                taken = sum(1 for r in role_of.values() if r[1] == sex)
                if taken == ROLES_PER_SEX:
                    return name
                role_of[name] = f"<{sex}{taken + 1}>"
                cast[role_of[name]] = name
            return role_of[name]

        return WORD.sub(role, text), cast

    def fill(self, text: str, cast: Cast, generator: torch.Generator | None = None) -> str:
        """`text` with each role replaced by its name in `cast`; a role the cast lacks gets a
        name of its sex not yet in the cast (drawn by corpus frequency), added to `cast`."""
        def name(match: re.Match) -> str:
            role = match.group(0)
            if role not in cast:
                cast[role] = self._draw(match.group(1), set(cast.values()), generator)
            return cast[role]

        return ROLE.sub(name, text)

    def _draw(self, sex: str, taken: set[str], generator: torch.Generator | None) -> str:
        pool = [n for n, s in self.sexes.items() if s == sex and n not in taken]
        if not pool:  # a corpus without names of this sex: any name not taken
            pool = [n for n in self.sexes if n not in taken] or list(self.sexes)
        weights = torch.tensor([float(self.counts[n]) for n in pool])
        return pool[int(torch.multinomial(weights, 1, generator=generator))]

    def save(self, path: str | Path) -> None:
        table = {name: {"sex": sex, "count": self.counts[name]}
                 for name, sex in sorted(self.sexes.items())}
        Path(path).write_text(yaml.safe_dump(table, sort_keys=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Names:
        try:
            table = parse_yaml(Path(path).read_text(encoding="utf-8"))
            names = cls({str(name): row["sex"] for name, row in table.items()},
                        {str(name): int(row["count"]) for name, row in table.items()})
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, KeyError,
                TypeError, ValueError) as error:
            raise RunDirectoryError(f"{path} is not a table of names (name: {{sex, count}}): "
                                    f"{error}") from error
        if not names.sexes or set(names.sexes.values()) - set(CENSUS_LISTS):
            raise RunDirectoryError(f"{path}: names must be given, each of sex f or m")
        return names
