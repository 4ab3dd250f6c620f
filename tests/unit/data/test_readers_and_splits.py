from __future__ import annotations

import json
from pathlib import Path

import pytest

from textwae.config.schema import DataConfig
from textwae.data.records import Example
from textwae.data.splits import load_splits, read_examples
from textwae.data.units import split_sentences, split_train_valid
from textwae.errors import DataError


def story(**fields) -> DataConfig:
    """One record per unit (the default splits records into sentences)."""
    return DataConfig(unit="story", **fields)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def write_jsonl(path: Path, rows: list[dict]) -> str:
    return write(path, "".join(json.dumps(row) + "\n" for row in rows))


def texts(examples: list[Example]) -> list[str]:
    return [ex.text for ex in examples]


# --- readers ---------------------------------------------------------------------------


def test_plain_text_one_record_per_line(tmp_path):
    path = write(tmp_path / "lines.txt", "  the  first line \nsecond\tline\n   third\n")
    assert texts(read_examples(path, story())) == ["the first line", "second line", "third"]


def test_plain_text_blank_lines_separate_stories(tmp_path):
    path = write(tmp_path / "stories.text", "Tom ran.\nHe fell.\n\n  \nAnn sang.\r\nShe won.\n\n")
    assert texts(read_examples(path, story())) == ["Tom ran. He fell.", "Ann sang. She won."]


def test_jsonl_with_label(tmp_path):
    path = write_jsonl(
        tmp_path / "data.jsonl",
        [
            {"text": "good  food", "stars": 5},
            {"text": "   ", "stars": 1},  # empty after normalisation: skipped
            {"text": "no label here", "stars": None},
            {"text": "bad service", "stars": ""},
        ],
    )
    examples = read_examples(path, story(label_field="stars"))
    assert examples == [
        Example("good food", "5"),
        Example("no label here", None),
        Example("bad service", None),
    ]


def test_csv_joins_several_text_columns(tmp_path):
    header = "storyid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,Ending,split\n"
    rows = '1,Tom ran.,"He fell, hard.",He cried.,Mom came.,All was well.,a\n2,A,B,C,D,E,b\n'
    path = write(tmp_path / "roc.csv", header + rows)
    columns = [f"InputSentence{i}" for i in range(1, 5)] + ["Ending"]
    examples = read_examples(path, story(text_field=columns, label_field="split"))
    assert examples == [
        Example("Tom ran. He fell, hard. He cried. Mom came. All was well.", "a"),
        Example("A B C D E", "b"),
    ]


def test_tsv(tmp_path):
    path = write(tmp_path / "data.tsv", "label\ttext\npos\tgreat, really great\nneg\tawful\n")
    examples = read_examples(path, story(label_field="label"))
    assert examples == [Example("great, really great", "pos"), Example("awful", "neg")]


def test_explicit_format_overrides_extension(tmp_path):
    path = write_jsonl(tmp_path / "data.txt", [{"text": "hello"}])
    assert texts(read_examples(path, story(format="jsonl"))) == ["hello"]
    assert texts(read_examples(path, story(format="text"))) == ['{"text": "hello"}']


def test_glob_and_list_of_paths(tmp_path):
    write(tmp_path / "b.txt", "b1\nb2\n")
    write(tmp_path / "a.txt", "a1\n")
    write_jsonl(tmp_path / "c.jsonl", [{"text": "c1"}])
    cfg = story()
    assert texts(read_examples(str(tmp_path / "*.txt"), cfg)) == ["a1", "b1", "b2"]
    sources = [str(tmp_path / "c.jsonl"), str(tmp_path / "a.txt")]
    assert texts(read_examples(sources, cfg)) == ["c1", "a1"]


def test_sentence_units_keep_the_label(tmp_path):
    story = "Tom met Mr. Lee at 9. They ate lunch! Was it good? "
    path = write_jsonl(tmp_path / "s.jsonl", [{"text": story, "mode": 2}])
    examples = read_examples(path, DataConfig(unit="sentence", label_field="mode"))
    assert examples == [
        Example("Tom met Mr. Lee at 9.", "2"),
        Example("They ate lunch!", "2"),
        Example("Was it good?", "2"),
    ]


SCENE = "Tom went to the cafe. The soup was cold. He left."


def test_sentence_units_take_their_own_labels_and_a_story_keeps_its_label(tmp_path):
    row = {"text": SCENE, "label": "complaint",
           "registers": ["neutral", "complaint", None]}
    path = write_jsonl(tmp_path / "s.jsonl", [row])
    cfg = DataConfig(label_field="label", sentence_label_field="registers")
    assert read_examples(path, cfg) == [Example("Tom went to the cafe.", "neutral"),
                                        Example("The soup was cold.", "complaint"),
                                        Example("He left.", None)]
    streamed = load_splits(DataConfig(train=path, valid=path, label_field="label",
                                      sentence_label_field="registers", streaming=True))
    assert streamed[0] == streamed[1] == read_examples(path, cfg)
    whole = read_examples(path, story(label_field="label"))
    assert [ex.label for ex in whole] == ["complaint"]


@pytest.mark.parametrize("cell, message", [
    (["neutral", "complaint"], r"3 sentences but 2 sentence labels"),
    ("complaint", r"registers holds str 'complaint', not a list of labels"),
    (None, r"registers holds no value, not a list of labels"),
    (["neutral", {"a": 1}, "x"], r"registers holds dict"),
])
def test_sentence_labels_that_do_not_fit_their_record_are_refused(tmp_path, cell, message):
    path = write_jsonl(tmp_path / "s.jsonl", [{"text": SCENE, "registers": cell}])
    with pytest.raises(DataError, match=message):
        read_examples(path, DataConfig(sentence_label_field="registers"))


def test_a_missing_sentence_label_column_names_the_setting(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [{"text": SCENE}])
    with pytest.raises(DataError, match=r"no label column registers \(data\.sentence_label_fi"):
        read_examples(path, DataConfig(sentence_label_field="registers"))
    with pytest.raises(ValueError, match=r"needs data\.unit=sentence"):
        story(sentence_label_field="registers").check()


def test_sentence_splitter_on_lowercased_tokenised_text():
    assert split_sentences("the food was great . i loved it ! why ? ok .") == [
        "the food was great .",
        "i loved it !",
        "why ?",
        "ok .",
    ]
    assert split_sentences("pi is 3.14 and e.g. fine") == ["pi is 3.14 and e.g. fine"]


@pytest.mark.parametrize(
    "content",
    ["", "\n\n  \n\t\n"],
    ids=["empty", "blank-lines-only"],
)
def test_empty_files_name_the_file(tmp_path, content):
    path = write(tmp_path / "empty.txt", content)
    with pytest.raises(DataError, match=r"empty\.txt"):
        read_examples(path, story())


def test_missing_file_and_glob_without_matches(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.txt: no such file"):
        read_examples(str(tmp_path / "nothere.txt"), story())
    with pytest.raises(DataError, match=r"\*\.csv: the glob matches no files"):
        read_examples(str(tmp_path / "*.csv"), story())


def test_non_utf8_reports_the_line_and_replace_reads_it(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("one\ntwo\ncaf\xe9 au lait\nfour\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: line 3: .*encoding_errors=replace"):
        read_examples(str(path), story())
    examples = read_examples(str(path), story(encoding_errors="replace"))
    assert texts(examples) == ["one", "two", "caf\ufffd au lait", "four"]


def test_utf8_byte_order_mark_is_not_part_of_the_header(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbftext\nhi\n")
    assert texts(read_examples(str(path), story())) == ["hi"]


def test_missing_text_column_lists_present_columns(tmp_path):
    path = write(tmp_path / "data.csv", "sentence,label\nhi,a\n")
    message = r"data\.csv: no text column text.*present: sentence, label"
    with pytest.raises(DataError, match=message):
        read_examples(path, story())
    jsonl = write_jsonl(tmp_path / "data.jsonl", [{"body": "x"}, {"body": "y", "id": 2}])
    with pytest.raises(DataError, match=r"data\.jsonl: .*present: body, id"):
        read_examples(jsonl, story())


def test_missing_label_column_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [{"text": "a", "y": 1}])
    with pytest.raises(DataError, match=r"no label column label.*present: text, y"):
        read_examples(path, story(label_field="label"))


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n\n{"text": "oops"\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 3: malformed JSON"):
        read_examples(path, story())


def test_format_hf_reads_local_files_and_directories(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [{"text": "first  story", "mode": 0}, {"text": "second", "mode": 1}]
    jsonl = write_jsonl(corpus / "train.jsonl", rows)
    cfg = story(format="hf", label_field="mode")
    expected = [Example("first story", "0"), Example("second", "1")]
    assert read_examples(jsonl, cfg) == expected
    assert read_examples(str(corpus), cfg) == expected
    tsv = write(tmp_path / "data.tsv", "mode\ttext\nx\thello there\n")
    assert read_examples(tsv, cfg) == [Example("hello there", "x")]
    with pytest.raises(DataError, match=r"no label column stars.*present: text, mode"):
        read_examples(jsonl, story(format="hf", label_field="stars"))


# --- train / valid split ---------------------------------------------------------------


def corpus(n: int) -> list[Example]:
    return [Example(f"story number {i}", str(i % 3)) for i in range(n)]


def test_split_is_deterministic_disjoint_complete_and_seeded():
    examples = corpus(2000)
    train, valid = split_train_valid(examples, 0.1, seed=0)
    assert (train, valid) == split_train_valid(examples, 0.1, seed=0)
    assert 150 <= len(valid) <= 250  # a coin per record: 10% in expectation
    assert set(texts(train)).isdisjoint(texts(valid))
    assert sorted(texts(train) + texts(valid)) == sorted(texts(examples))
    # Hash-based: the order of the corpus does not matter, the seed does.
    shuffled = examples[::-1]
    assert set(texts(split_train_valid(shuffled, 0.1, seed=0)[1])) == set(texts(valid))
    assert set(texts(split_train_valid(examples, 0.1, seed=1)[1])) != set(texts(valid))
    # a record's side depends on its own text alone: a grown corpus keeps the old split
    grown = split_train_valid(corpus(4000), 0.1, seed=0)[1]
    assert set(texts(valid)) <= set(texts(grown))


def test_split_keeps_one_example_on_each_side():
    train, valid = split_train_valid(corpus(2), 0.01, seed=0)
    assert len(train) == len(valid) == 1
    train, valid = split_train_valid(corpus(3), 0.999, seed=0)
    assert len(train) == 1 and len(valid) == 2
    with pytest.raises(DataError, match=r"data\.valid"):
        split_train_valid(corpus(1), 0.5, seed=0)


def test_the_in_memory_and_the_streamed_split_hold_out_the_same_records(tmp_path):
    stories = [f"Story {i} begins. Story {i} goes on." for i in range(300)]
    path = write(tmp_path / "stories.txt", "\n".join(stories))
    for seed in (0, 7):
        cfg = DataConfig(train=path, valid_fraction=0.2, split_seed=seed)
        in_memory = load_splits(cfg)
        streamed = load_splits(DataConfig(train=path, valid_fraction=0.2, split_seed=seed,
                                          streaming=True))
        assert in_memory == streamed
        assert 0 < len(in_memory[1]) < len(in_memory[0])


def test_load_splits_uses_valid_when_given(tmp_path):
    train = write(tmp_path / "train.txt", "\n".join(f"line {i}" for i in range(10)))
    valid = write(tmp_path / "valid.txt", "held out\n")
    train_ex, valid_ex = load_splits(story(train=train, valid=valid))
    assert len(train_ex) == 10 and texts(valid_ex) == ["held out"]
    train_ex, valid_ex = load_splits(story(train=train, valid_fraction=0.2))
    assert len(train_ex) + len(valid_ex) == 10 and valid_ex
    assert set(texts(train_ex)).isdisjoint(texts(valid_ex))


def test_load_splits_holds_out_whole_stories_before_sentence_splitting(tmp_path):
    stories = [f"Story {i} begins. Story {i} goes on. Story {i} ends." for i in range(40)]
    path = write(tmp_path / "stories.txt", "\n".join(stories))
    train, valid = load_splits(DataConfig(train=path, unit="sentence", valid_fraction=0.25))
    train_ids, valid_ids = ({ex.text.split()[1] for ex in units} for units in (train, valid))
    assert len(train) == 3 * len(train_ids) and len(valid) == 3 * len(valid_ids)
    assert valid_ids and train_ids.isdisjoint(valid_ids)
    assert len(train_ids | valid_ids) == 40


# --- batching --------------------------------------------------------------------------
