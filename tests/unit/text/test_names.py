"""Character names as roles: which words are names, masking, filling, and the run file."""

from types import SimpleNamespace

import pytest
import torch

from tests.conftest import toy_texts
from textwae.config.schema import TokenizerConfig
from textwae.errors import DataError, RunDirectoryError
from textwae.generation.decoding import casts_of, path_casts, with_names
from textwae.text.names import (
    ROLES_PER_SEX,
    Names,
    census_first_names,
    census_sex,
    pronoun_clashes,
    role_sex,
    roles,
)
from textwae.text.tokenizers import Tokenizer

CORPUS = ["Anna met Ben at the cafe.", "Ben will call Anna on Sunday.", "Will was late.",
          "The will was read in June.", "Mary and Anna left.", "Zorblax waved."]


@pytest.fixture
def names() -> Names:
    return Names.learn(CORPUS)


def test_census_first_names_come_with_their_sex():
    census = census_first_names()
    assert census["Mary"] == "f" and census["James"] == "m"
    assert len(census) > 5000


def test_a_name_is_a_census_first_name_the_corpus_writes_as_a_name(names):
    # "Will" is written in lower case as often as capitalised; Sunday and June are dates;
    # Zorblax is no census name
    assert names.sexes == {"Anna": "f", "Ben": "m", "Mary": "f"}
    assert names.counts == {"Anna": 3, "Ben": 2, "Mary": 1}
    with pytest.raises(DataError, match="no census first name"):
        Names.learn(["the food was great .", "i loved it ."])


def test_masking_gives_each_character_one_role_by_sex_and_order(names):
    masked, cast = names.mask("Mary met Ben. Anna saw Ben's dog and Mary.")
    assert masked == "<f1> met <m1>. <f2> saw <m1>'s dog and <f1>."
    assert cast == {"<f1>": "Mary", "<m1>": "Ben", "<f2>": "Anna"}
    assert names.mask(masked) == (masked, {})  # roles are not names: masking is idempotent


def test_names_past_the_last_role_stay_as_they_are():
    women = [n for n, s in census_first_names().items() if s == "f"][: ROLES_PER_SEX + 1]
    names = Names(dict.fromkeys(women, "f"), dict.fromkeys(women, 1))
    masked, cast = names.mask(" ".join(women))
    assert masked.split() == [f"<f{i}>" for i in range(1, ROLES_PER_SEX + 1)] + women[-1:]
    assert list(cast.values()) == women[:ROLES_PER_SEX]


def test_a_pronoun_clashes_only_where_every_character_before_it_is_of_the_other_sex(names):
    assert role_sex("<f2>") == "f" and role_sex("<m1>") == "m"
    assert role_sex("f1") is None and role_sex("Anna") is None
    masked = ["<m1> won the race .", "She cried .", "His mom came .", "Her dog ran ."]
    assert pronoun_clashes(masked, role_sex) == [1, 3]
    # no character named yet, or one of the pronoun's sex among them: no clash
    assert pronoun_clashes(["She cried .", "He left ."], role_sex) == []
    assert pronoun_clashes(["<m1> met <f1> .", "She cried .", "He left ."], role_sex) == []
    # a pronoun inside a sentence, or a word that only starts like one, is not read
    assert pronoun_clashes(["<m1> won .", "Then she cried .", "Shelly came ."], role_sex) == []
    # filled text, with a table of names for their sex
    assert pronoun_clashes(["Ben met Mary .", "She left ."], names.sexes.get) == []
    assert pronoun_clashes(["Ben left .", "Her cat stayed ."], names.sexes.get) == [1]
    # or census first names, days and months left out
    assert census_sex("Maria") == "f" and census_sex("Ben") == "m"
    assert census_sex("June") is None and census_sex("the") is None
    assert pronoun_clashes(["On Sunday Maria left .", "He waved ."], census_sex) == [1]


def test_filling_uses_the_cast_and_draws_new_names_of_the_roles_sex(names):
    cast = {"<f1>": "Anna"}
    filled = names.fill("<f1> called <m1>. <f2> came.", cast, torch.Generator().manual_seed(0))
    assert filled == f"Anna called Ben. {cast['<f2>']} came."
    assert cast["<m1>"] == "Ben" and cast["<f2>"] == "Mary"  # the only names left of each sex
    # one cast serves every sentence of a story: a role keeps its name
    assert names.fill("<f2> waved at <m1>.", cast) == "Mary waved at Ben."


def test_filling_is_seeded(names):
    def drawn(seed: int) -> list[str]:
        generator = torch.Generator().manual_seed(seed)
        return [names.fill("<f1>", {}, generator) for _ in range(20)]
    assert drawn(3) == drawn(3)
    assert set(drawn(3)) == {"Anna", "Mary"}  # by corpus frequency, both of them


def test_outputs_keep_the_inputs_names_or_get_their_own(names):
    model = SimpleNamespace(names=names)
    casts = casts_of(model, ["Mary met Ben.", "Anna waved."])
    assert with_names(model, ["<m1> left <f1>.", "<f1> waved."], casts=casts) == [
        "Ben left Mary.", "Anna waved."]
    # a path keeps its start's characters, and takes its end's for roles the start lacks
    path = path_casts(casts_of(model, ["Mary waved.", "Anna met Ben."]), 3)
    assert path == [{"<f1>": "Mary", "<m1>": "Ben"}] * 3
    without = SimpleNamespace(names=None)
    assert casts_of(without, ["Mary"]) is None
    assert with_names(without, ["<f1> waved."]) == ["<f1> waved."]


def test_the_names_file_round_trips_and_a_bad_one_is_named(names, tmp_path):
    names.save(tmp_path / "names.yaml")
    assert Names.load(tmp_path / "names.yaml") == names
    for bad in ("just text", "Anna: {sex: x, count: 1}", "Anna: {count: 1}", "[1, 2]"):
        (tmp_path / "bad.yaml").write_text(bad)
        with pytest.raises(RunDirectoryError, match=r"bad\.yaml"):
            Names.load(tmp_path / "bad.yaml")


def test_the_tokenizer_keeps_each_role_one_piece():
    texts = [text.replace("anna", "<f1>") for text in toy_texts()]
    tokenizer = Tokenizer.train(texts, TokenizerConfig(vocab_size=120), roles())
    ids = tokenizer.encode("<m3> went to the calm cafe .")
    assert "<m3>" in [tokenizer.processor.id_to_piece(i) for i in ids]
    assert tokenizer.decode(ids) == "<m3> went to the calm cafe ."
