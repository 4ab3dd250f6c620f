"""Autoregressive decoders conditioned on a code z.

Every decoder offers the same two calls: `forward(ids, z)` for teacher forcing and
`start(z)` / `step(tokens, state)` for generation, so one decoding routine serves all.
"""

from __future__ import annotations

import torch
from torch import nn

from textwae.config import ModelConfig
from textwae.tokenizer import PAD_ID

GRUState = tuple[torch.Tensor, torch.Tensor]  # (hidden (L, B, H), z (B, D))


class GRUDecoder(nn.Module):
    """z sets the initial state and is fed beside every input embedding, so the decoder
    cannot ignore it as easily as when z only starts the recurrence."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.num_layers = cfg.num_layers
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD_ID)
        self.initial_state = nn.Linear(cfg.latent_dim, cfg.num_layers * cfg.hidden_size)
        self.gru = nn.GRU(cfg.embedding_dim + cfg.latent_dim, cfg.hidden_size,
                          num_layers=cfg.num_layers, batch_first=True,
                          dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.dropout)
        self.to_embedding = nn.Linear(cfg.hidden_size, cfg.embedding_dim)
        self.output = nn.Linear(cfg.embedding_dim, vocab_size)
        if cfg.tie_embeddings:
            self.output.weight = self.embedding.weight

    def start(self, z: torch.Tensor) -> GRUState:
        B = z.shape[0]
        hidden = torch.tanh(self.initial_state(z))  # (B, L * H)
        return hidden.view(B, self.num_layers, -1).transpose(0, 1).contiguous(), z

    def _run(self, ids: torch.Tensor, state: GRUState) -> tuple[torch.Tensor, GRUState]:
        hidden, z = state
        B, T = ids.shape  # batch, time
        embedded = self.dropout(self.embedding(ids))  # (B, T, E)
        inputs = torch.cat([embedded, z[:, None, :].expand(B, T, z.shape[1])], dim=-1)
        outputs, hidden = self.gru(inputs, hidden)  # (B, T, H)
        logits = self.output(torch.tanh(self.to_embedding(self.dropout(outputs))))  # (B, T, V)
        return logits, (hidden, z)

    def forward(self, ids: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for inputs `ids` (B, T)."""
        return self._run(ids, self.start(z))[0]

    def step(self, tokens: torch.Tensor, state: GRUState) -> tuple[torch.Tensor, GRUState]:
        """Logits (B, V) for the next token after `tokens` (B,)."""
        logits, state = self._run(tokens[:, None], state)
        return logits[:, 0], state

    @staticmethod
    def reorder_state(state: GRUState, order: torch.Tensor) -> GRUState:
        """Select and repeat batch rows of the state (for beam search)."""
        hidden, z = state
        return hidden[:, order], z[order]


DECODERS = {"gru": GRUDecoder}
