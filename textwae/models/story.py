"""The story level: a story is a path through the sentence latent space (Shen et al., 2019).

A bidirectional GRU reads a story's sentence codes (the sentence model's, fixed) and gives a
story code, matched to its own mixture-of-Gaussians prior by the same regularisers as the
sentence codes (label-guided modes included). A GRU decoder conditioned on the story code
predicts each next sentence code as a mixture of Gaussians, and whether the story ends after
it; the sentence decoder turns the codes into text (`textwae.generation.stories`).

A mixture rather than a point: after "Anna went to the cafe." a story can go on in several
ways, and a regression onto their mean would predict a code between them, where no sentence
is. The story level lives in the run directory's `story/` folder (weights, and its own
trainer state and metrics while it trains); `config.yaml` at the top describes both levels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from textwae.config.schema import Config
from textwae.errors import ConfigError, RunDirectoryError
from textwae.models.autoencoder import TextWAE
from textwae.models.latent import LATENTS
from textwae.models.noise import code_noise
from textwae.objectives.codes import LatentOutput
from textwae.objectives.priors import MixtureOfGaussians
from textwae.objectives.regularizers import (
    REGULARIZERS,
    label_mmd_term,
    trained_by_main_optimizer,
)
from textwae.runs import checkpoint

STORY_DIR = "story"  # a run directory's folder for the story level


@dataclass
class StoryBatch:
    codes: torch.Tensor  # (B, S, D) sentence codes, zeros after each story's last sentence
    lengths: torch.Tensor  # (B,) long: sentences per story
    index: torch.Tensor  # (B,) long: position of each story in its dataset
    components: torch.Tensor | None = None  # (B,) label-guided mode of each story, -1: free

    @property
    def mask(self) -> torch.Tensor:
        """(B, S) bool, True at real sentences."""
        return torch.arange(self.codes.shape[1], device=self.codes.device) < self.lengths[:, None]

    def to(self, device: torch.device | str) -> StoryBatch:
        return StoryBatch(*(None if value is None else value.to(device)
                            for value in (getattr(self, f.name) for f in fields(self))))


@dataclass
class StoryCodes:
    """The sentence codes of a list of stories, which story batches are cut from."""

    codes: list[torch.Tensor]  # per story (S_i, D), S_i >= 1
    components: torch.Tensor | None = None  # (N,) label-guided mode of each story, -1: free

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def lengths(self) -> list[int]:
        return [len(story) for story in self.codes]

    def batch(self, indices: list[int]) -> StoryBatch:
        stories = [self.codes[i] for i in indices]
        codes = nn.utils.rnn.pad_sequence(stories, batch_first=True)  # (B, S, D)
        batch = StoryBatch(codes, torch.tensor([len(s) for s in stories]),
                           torch.tensor(indices, dtype=torch.long))
        if self.components is not None:
            batch.components = self.components[indices]
        return batch


@dataclass
class StoryOutput:
    loss: torch.Tensor  # recon + lambda * reg + penalty + label term
    recon: torch.Tensor  # code NLL per dimension + end-of-story cross-entropy
    reg: torch.Tensor  # D(Q_Z, P_Z) of this batch's story codes
    label: torch.Tensor | float  # cross-entropy of labelled stories' components
    latent: LatentOutput  # the story codes
    code_nll: torch.Tensor  # mean NLL per dimension of the real next sentence codes
    stop: torch.Tensor  # mean cross-entropy of "the story ends after this sentence"


@dataclass
class CodeMixture:
    """Distributions of next sentence codes: a mixture of K diagonal Gaussians each."""

    logits: torch.Tensor  # (..., K) component weights, unnormalised
    means: torch.Tensor  # (..., K, D)
    stds: torch.Tensor  # (..., K, D)

    def nll(self, target: torch.Tensor) -> torch.Tensor:
        """-log p(target) (...,) of codes (..., D), in nats."""
        normal = torch.distributions.Normal(self.means, self.stds)
        log_probs = normal.log_prob(target.unsqueeze(-2)).sum(dim=-1)  # (..., K)
        return -(log_probs + self.logits.log_softmax(dim=-1)).logsumexp(dim=-1)

    def most_likely(self) -> torch.Tensor:
        """The mean (..., D) of each distribution's heaviest component."""
        best = self.logits.argmax(dim=-1)  # (...,)
        index = best[..., None, None].expand(*best.shape, 1, self.means.shape[-1])
        return self.means.gather(-2, index).squeeze(-2)

    def sample(self, temperature: float, generator: torch.Generator) -> torch.Tensor:
        """A code (..., D) from each distribution, spreads scaled by `temperature`."""
        weights = self.logits.softmax(dim=-1).reshape(-1, self.logits.shape[-1]).cpu()
        chosen = torch.multinomial(weights, 1, generator=generator).reshape(
            self.logits.shape[:-1]).to(self.means.device)  # (...,)
        index = chosen[..., None, None].expand(*chosen.shape, 1, self.means.shape[-1])
        means = self.means.gather(-2, index).squeeze(-2)  # (..., D)
        stds = self.stds.gather(-2, index).squeeze(-2)
        noise = torch.randn(means.shape, generator=generator).to(means.device)
        return means + temperature * stds * noise


class StoryModel(nn.Module):
    """Story encoder, story latent and prior, and the decoder of sentence-code paths."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        cfg, code_dim = config.story, config.model.latent_dim
        hidden = cfg.hidden_size
        self.encoder = nn.GRU(code_dim, hidden // 2, batch_first=True, bidirectional=True)
        self.latent = LATENTS[config.model.latent](hidden, cfg.latent_dim)
        # the sentence modes' weights are the sentences' label shares, not the stories'
        self.prior = MixtureOfGaussians(replace(config.prior, weights=None),
                                        cfg.latent_dim)
        self.regularizer = REGULARIZERS[config.model.regularizer](config.regularizer,
                                                                  cfg.latent_dim)
        self.start = nn.Parameter(torch.zeros(code_dim))  # what the decoder reads first
        self.initial = nn.Linear(cfg.latent_dim, hidden)
        self.decoder = nn.GRU(code_dim + cfg.latent_dim, hidden, batch_first=True)
        # per step: K weights, K means and K log-spreads of D values, and the end logit
        self.head = nn.Linear(hidden, cfg.code_mixtures * (1 + 2 * code_dim) + 1)

    def model_parameters(self) -> list[nn.Parameter]:
        """What the main optimiser trains: everything but the regulariser's own parameters."""
        return trained_by_main_optimizer(self, self.regularizer)

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        return self.prior.optimizer_groups(self.model_parameters(), weight_decay)

    def encode(self, codes: torch.Tensor, lengths: torch.Tensor) -> LatentOutput:
        """Story codes of padded sentence-code sequences (B, S, D) of `lengths` (B,)."""
        packed = pack_padded_sequence(codes, lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, last = self.encoder(packed)  # (2, B, H/2): each direction's final state
        return self.latent(torch.cat([last[0], last[1]], dim=-1))

    def _step(self, z: torch.Tensor, inputs: torch.Tensor, state: torch.Tensor | None,
              ) -> tuple[CodeMixture, torch.Tensor, torch.Tensor]:
        """Next-code mixtures (B, S, ...), end logits (B, S) and the GRU state after reading
        `inputs` (B, S, D) under story codes z (B, Z); `state` None starts from z."""
        B, S, D = inputs.shape  # batch, sentences, code size
        K = self.config.story.code_mixtures
        if state is None:
            state = torch.tanh(self.initial(z))[None]  # (1, B, H)
        read = torch.cat([inputs, z[:, None].expand(B, S, z.shape[-1])], dim=-1)
        out, state = self.decoder(read, state)  # (B, S, H)
        params = self.head(out)  # (B, S, K (1 + 2D) + 1)
        logits, means, log_stds, end = params.split([K, K * D, K * D, 1], dim=-1)
        stds = F.softplus(log_stds).view(B, S, K, D) + self.config.story.min_std
        return CodeMixture(logits, means.view(B, S, K, D), stds), end[..., 0], state

    def forward(self, batch: StoryBatch, components: torch.Tensor | None = None) -> StoryOutput:
        """Loss and parts for a batch of stories; `components` (B,) gives each story's mode."""
        cfg = self.config.story
        latent = self.encode(batch.codes, batch.lengths)
        B, S, D = batch.codes.shape
        inputs = torch.cat([self.start.expand(B, 1, D), batch.codes[:, :-1]], dim=1)
        mixture, end_logits, _ = self._step(code_noise(latent.z, cfg.z_noise, self.training),
                                            code_noise(inputs, cfg.code_noise, self.training),
                                            None)
        mask = batch.mask  # (B, S)
        code_nll = mixture.nll(batch.codes)[mask].mean() / D
        last = torch.arange(S, device=mask.device) == (batch.lengths - 1)[:, None]  # (B, S)
        stop = F.binary_cross_entropy_with_logits(end_logits[mask], last[mask].float())
        recon = code_nll + stop
        reg = self.regularizer(latent, self.prior) if self.training else recon.new_zeros(())
        label = self.prior.label_loss(latent.z, components)
        weights = self.config.regularizer
        matched = label_mmd_term(latent.z, components, self.prior, weights, self.training)
        loss = (recon + weights.weight * reg + self.prior.penalty() + weights.label_weight * label
                + matched)
        return StoryOutput(loss=loss, recon=recon, reg=reg, label=label, latent=latent,
                           code_nll=code_nll, stop=stop)

    @torch.no_grad()
    def generate_codes(self, z: torch.Tensor, max_sentences: int,
                       temperature: float | None = None,
                       generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Sentence-code paths (S_i, D) of story codes z (N, Z), each ending where its end
        probability passes a coin (or 0.5 with `temperature` None, which also takes each
        step's most likely code) or after `max_sentences`."""
        if max_sentences < 1:
            raise ConfigError(f"a story needs at least 1 sentence, got max {max_sentences}")
        self.eval()
        N, D = z.shape[0], self.config.model.latent_dim
        inputs, state = self.start.expand(N, 1, D), None
        lengths = torch.full((N,), max_sentences, dtype=torch.long)
        ended = torch.zeros(N, dtype=torch.bool)
        steps = []
        for t in range(max_sentences):
            mixture, end_logits, state = self._step(z, inputs, state)
            inputs = (mixture.most_likely() if temperature is None
                      else mixture.sample(temperature, generator))  # (N, 1, D)
            steps.append(inputs[:, 0])
            p_end = torch.sigmoid(end_logits[:, 0]).cpu()  # (N,)
            ends = p_end > (0.5 if temperature is None else torch.rand(N, generator=generator))
            lengths[ends & ~ended] = t + 1
            ended |= ends
            if ended.all():
                break
        paths = torch.stack(steps, dim=1)  # (N, S, D)
        return [paths[i, : lengths[i]] for i in range(N)]

    def save_pretrained(self, story_dir: str | Path) -> None:
        """The story level's weights; the run's config.yaml describes it."""
        checkpoint.save_tensors(Path(story_dir) / checkpoint.WEIGHTS_FILE, self.state_dict())

    def load_weights(self, weights: dict[str, torch.Tensor], source: Path | str) -> None:
        checkpoint.load_matching(self, weights, source)


@dataclass
class StoryRun:
    """Both levels of a story run directory: the sentence model and the story model."""

    sentences: TextWAE
    stories: StoryModel

    @classmethod
    def from_pretrained(cls, run_dir: str | Path, device: str = "cpu",
                        sentences: TextWAE | None = None) -> StoryRun:
        """Both levels of `run_dir`; `sentences`, its sentence model if already loaded."""
        run_dir = Path(run_dir)
        sentences = sentences or TextWAE.from_pretrained(run_dir, device)
        weights_path = run_dir / STORY_DIR / checkpoint.WEIGHTS_FILE
        if not sentences.config.story.enabled or not weights_path.is_file():
            raise RunDirectoryError(
                f"{run_dir} holds no story model ({STORY_DIR}/{checkpoint.WEIGHTS_FILE}): "
                "train one with --config configs/stories.yaml")
        stories = StoryModel(sentences.config)
        weights, _ = checkpoint.load_tensors(weights_path)
        stories.load_weights(weights, source=weights_path)
        return cls(sentences, stories.to(device).eval())


def has_story_level(run_dir: str | Path) -> bool:
    """Whether a run directory holds a trained story model beside its sentence model."""
    return (Path(run_dir) / STORY_DIR / checkpoint.WEIGHTS_FILE).is_file()

