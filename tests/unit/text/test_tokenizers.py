"""The default SentencePiece tokenizer on the embedded corpus."""

import json

import pytest

from tests.conftest import EMBEDDED_CORPUS
from textwae.config.schema import TokenizerConfig
from textwae.data.units import split_sentences
from textwae.evaluation.metrics import words
from textwae.text.tokenizers import Tokenizer


@pytest.fixture(scope="module")
def sentences():
    with open(EMBEDDED_CORPUS, encoding="utf-8") as lines:
        return [sentence for line in lines
                for sentence in split_sentences(json.loads(line)["text"])][::4]


@pytest.fixture(scope="module")
def tokenizer(sentences):
    return Tokenizer.train(sentences, TokenizerConfig(vocab_size=2000))


def test_the_default_keeps_the_words_of_the_demo_corpus_whole(sentences, tokenizer):
    # a word cut into pieces is where a decoder can put pieces together into a non-word;
    # encode frames the pieces with bos and eos
    cut = [s for s in sentences if len(tokenizer.encode(s)) - 2 > len(words(s))]
    assert cut == []  # unigram cuts "nobody" into "no bo dy", in most sentences


def test_the_default_round_trips_the_demo_corpus(sentences, tokenizer):
    sample = sentences[::50]
    assert [tokenizer.decode(tokenizer.encode(s)) for s in sample] == sample
