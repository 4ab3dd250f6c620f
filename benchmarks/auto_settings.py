"""What the `auto` settings (textwae.text.auto_settings) choose on each corpus, and the share
of word tokens a tokenizer of each allowed size keeps whole: no model is trained.

    python benchmarks/auto_settings.py [--corpora demo yelp rocstories social]

demo: the embedded corpus's sentences (labels: the four registers); yelp: sentiment.test.*
(two labels); rocstories: val.csv's stories with the right ending and test.csv's contexts,
as sentences (configs/stories.yaml); social: 4,000 short posts made here with @-mentions,
URLs, hashtags and emoji (two labels). Writes results/auto_settings.json.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from lib.corpora import DATA, rocstories_jsonl, write_jsonl, yelp_jsonl
from lib.paths import DEMO_CORPUS
from lib.results import add_out_argument, machine, write_results

from textwae.config.schema import DataConfig, TokenizerConfig
from textwae.data.splits import load_splits
from textwae.text import auto_settings
from textwae.text.tokenizers import Tokenizer


def social_jsonl(n: int = 4000, seed: int = 0) -> Path:
    """Short posts with @-mentions, URLs, hashtags and emoji, labelled up or down, made once."""
    out = DATA / "social.jsonl"
    if out.exists():
        return out
    rng = random.Random(seed)
    people = [f"@{rng.choice(['sam', 'jo', 'kit', 'lee', 'max'])}{rng.randint(1, 999)}"
              for _ in range(300)]
    things = ["the new phone", "this game", "my coffee", "the bus", "that show", "the update",
              "our team", "the concert", "this weather", "the app", "my cat", "lunch"]
    moods = {"up": ["love", "adore", "can't stop playing", "so happy with", "big fan of"],
             "down": ["hate", "can't stand", "so done with", "tired of", "annoyed by"]}
    emoji = {"up": ["\U0001F60D", "\U0001F525", "\U0001F389", "\u2728"],
             "down": ["\U0001F620", "\U0001F644", "\U0001F62D", "\U0001F4A9"]}
    records = []
    for _ in range(n):
        label = rng.choice(["up", "down"])
        words = [rng.choice(moods[label]), rng.choice(things)]
        if rng.random() < 0.5:
            words.insert(0, rng.choice(people))
        if rng.random() < 0.3:
            words.append(f"https://t.co/{''.join(rng.choices('abcdefghXYZ0123456789', k=8))}")
        if rng.random() < 0.4:
            words.append(f"#{rng.choice(things).split()[-1]}{rng.randint(0, 30)}")
        words.append(" ".join(rng.choices(emoji[label], k=rng.randint(1, 3))))
        records.append({"text": " ".join(words), "label": label})
    write_jsonl(out, records)
    return out


def corpus_config(name: str) -> DataConfig:
    if name == "demo":
        return DataConfig(train=str(DEMO_CORPUS), label_field="label")
    if name == "yelp":
        return DataConfig(train=str(yelp_jsonl("test")), valid=str(yelp_jsonl("dev")),
                          label_field="label")
    if name == "rocstories":
        train, valid = rocstories_jsonl()
        return DataConfig(train=str(train), valid=str(valid))
    return DataConfig(train=str(social_jsonl()), label_field="label")


def measure(name: str) -> dict:
    train_units, _ = load_splits(corpus_config(name))
    texts = [unit.text for unit in train_units]
    chunks = auto_settings.chunk_counts(texts)
    shares = {}
    for size in auto_settings.VOCAB_SIZES:
        tokenizer = Tokenizer.train(texts, TokenizerConfig(vocab_size=size))
        shares[size] = round(auto_settings.whole_word_share(tokenizer, chunks), 4)
    start = time.perf_counter()
    vocab = auto_settings.choose_vocab_size(texts, TokenizerConfig())
    tokenizer = Tokenizer.train(texts, TokenizerConfig(vocab_size=vocab.value))
    length = auto_settings.choose_max_length(auto_settings.unit_lengths(texts, [tokenizer]))
    seconds = time.perf_counter() - start
    batch, lr = auto_settings.choose_batch(len(texts))
    return {"units": len(texts), "whole_word_share_by_size": shares,
            "chosen": {choice.key: choice.value for choice in (vocab, length, batch, lr)},
            "reasons": [choice.line() for choice in (vocab, length, batch, lr)],
            "vocab_and_length_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", nargs="+", default=["demo", "yelp", "rocstories", "social"],
                        choices=["demo", "yelp", "rocstories", "social"])
    add_out_argument(parser, "auto_settings")
    args = parser.parse_args()
    results = {}
    for name in args.corpora:
        results[name] = measure(name)
        print(name, results[name]["units"], "units")
        for line in results[name]["reasons"]:
            print("  " + line)
        print("  whole-word share by size:", results[name]["whole_word_share_by_size"])
    path = write_results(args.out, {"machine": machine(), "rule": {
        "vocab_sizes": auto_settings.VOCAB_SIZES, "whole_words": auto_settings.WHOLE_WORDS,
        "length_percentile": auto_settings.LENGTH_PERCENTILE}, "corpora": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
