"""TextWAE: encoder -> latent -> decoder, regularised towards a mixture-of-Gaussians prior."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from textwae.config.loading import load_run_config
from textwae.config.schema import Config, ModelConfig
from textwae.errors import ConfigError, TokenizerError
from textwae.models import pretrained
from textwae.models.decoders import DECODERS
from textwae.models.encoders import ENCODERS
from textwae.models.latent import LATENTS
from textwae.models.noise import code_noise, encoder_noise
from textwae.models.run_tokenizer import (
    RunTokenizer,
    load_run_tokenizer,
    run_tokenizer_file,
)
from textwae.objectives.codes import LatentOutput, logvar_penalty
from textwae.objectives.priors import MixtureOfGaussians
from textwae.objectives.regularizers import (
    REGULARIZERS,
    label_mmd_term,
    trained_by_main_optimizer,
)
from textwae.runs import checkpoint
from textwae.text.batching import Batch, TokenizedTexts, chunks
from textwae.text.feature_cache import unit_features
from textwae.text.names import Names
from textwae.text.token_cache import sequence_lengths, tokenize_texts
from textwae.text.tokenizers import PAD_ID, UNK_ID, AnyTokenizer, PretrainedTokenizer

FINGERPRINT_KEYS = {"decoder": "tokenizer_sha256", "encoder": "encoder_tokenizer_sha256"}
FEATURE_BATCH = 128  # units a frozen encoder pools at once while its features are computed


@dataclass
class TextWAEOutput:
    loss: torch.Tensor  # recon + lambda * reg + penalty: what the optimiser minimises
    recon: torch.Tensor  # mean cross-entropy per target token
    reg: torch.Tensor  # D(Q_Z, P_Z) on this batch
    penalty: torch.Tensor | float  # weighted log-variance penalty + learnable prior's penalty
    label: torch.Tensor | float  # cross-entropy of labelled codes' components; 0 without labels
    latent: LatentOutput
    tokens: torch.Tensor  # number of target tokens


def word_dropout(ids: torch.Tensor, rate: float, unk_id: int = UNK_ID,
                 pad_id: int = PAD_ID) -> torch.Tensor:
    """Replace a share `rate` of real input tokens (not bos, not pad) by unk."""
    drop = torch.rand(ids.shape, device=ids.device) < rate
    drop[:, 0] = False
    return ids.masked_fill(drop & (ids != pad_id), unk_id)


def model_tokenizers(cfg: ModelConfig,
                     sentencepiece: Callable[[], RunTokenizer]) -> dict[str, AnyTokenizer]:
    """Each part's tokenizer: a pretrained part's own, else the run's own tokenizer
    (`sentencepiece()`, called only if a part needs it)."""
    own = {part: pretrained.part_tokenizer(cfg, part) for part in pretrained.PARTS}
    shared = sentencepiece() if None in own.values() else None
    return {part: tokenizer or shared for part, tokenizer in own.items()}


class TextWAE(nn.Module):
    """The whole model; a run directory rebuilds it with `from_pretrained`."""

    def __init__(self, config: Config, tokenizer: AnyTokenizer,
                 encoder_tokenizer: AnyTokenizer | None = None,
                 parts: ModelConfig | None = None, names: Names | None = None) -> None:
        """`tokenizer` gives the decoder's ids, and the encoder's too unless the encoder has
        its own `encoder_tokenizer`. `parts` is `config.model` with the directories the
        pretrained parts are built from, when they are not the configured ones (a run
        directory's copies, see `build`). `names` (data.mask_names) turns the character names
        of every text it reads into roles."""
        super().__init__()
        if pending := config.unresolved():
            raise ConfigError(f"{', '.join(pending)}: auto is chosen from the training split "
                              f"when `train` starts; give numbers to build a model outside a run")
        self.config = config
        self.names = names
        self.tokenizer = tokenizer
        self.encoder_tokenizer = encoder_tokenizer or tokenizer
        cfg = config.model
        parts = parts or cfg
        self.encoder = ENCODERS[cfg.encoder](parts, self.encoder_tokenizer.vocab_size)
        width = self.encoder.output_size
        self.head: nn.Module = nn.Identity()  # the pooled features as they are
        if cfg.freeze_encoder:
            # no gradient, no optimiser state, no dropout: its features are fixed per unit,
            # and a trainable head maps them to what the latent projects
            self.encoder.requires_grad_(False).eval()
            self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU())
        self.latent = LATENTS[cfg.latent](width, cfg.latent_dim)
        self.prior = MixtureOfGaussians(config.prior, cfg.latent_dim)
        self.regularizer = REGULARIZERS[cfg.regularizer](config.regularizer, cfg.latent_dim)
        modes = config.prior.components if cfg.mode_input else 0
        self.decoder = DECODERS[cfg.decoder](parts, tokenizer.vocab_size, cfg.latent_dim + modes)

    def model_parameters(self) -> list[nn.Parameter]:
        """What the main optimiser trains: everything but the regulariser's own parameters
        and the frozen ones (a frozen encoder's, a frozen or adapted decoder LM's base)."""
        return [parameter for parameter in trained_by_main_optimizer(self, self.regularizer)
                if parameter.requires_grad]

    def train(self, mode: bool = True) -> TextWAE:
        """As nn.Module's; a frozen encoder stays in eval mode (its features are fixed)."""
        super().train(mode)
        if self.config.model.freeze_encoder:
            self.encoder.eval()
        return self

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """`model_parameters` as AdamW groups (a learnable prior's without weight decay)."""
        return self.prior.optimizer_groups(self.model_parameters(), weight_decay)

    def tokenize(self, texts: list[str], cache_dir: str | Path | None = None,
                 features: bool = False) -> TokenizedTexts:
        """Token ids of `texts` for this model's parts, cut to `data.max_length`; with
        `features` and a frozen encoder, also its pooled features of each unit (cached under
        `cache_dir` if given), so training need not run the encoder."""
        max_length = self.config.data.max_length
        if self.names is not None:
            texts = [self.names.mask(text)[0] for text in texts]
        tokenized = tokenize_texts(texts, self.tokenizer, self.encoder_tokenizer, max_length,
                                   cache_dir)
        if features and self.config.model.freeze_encoder:
            source = tokenized.ids if tokenized.encoder_ids is None else tokenized.encoder_ids
            lengths = sequence_lengths(source)
            tokenized.features = unit_features(
                texts, self.encoder_fingerprint(), max_length, self.encoder.output_size,
                lambda indices: self._pooled_features(tokenized, indices, lengths), cache_dir)
        return tokenized

    @torch.no_grad()
    def _pooled_features(self, tokenized: TokenizedTexts, indices: list[int],
                         lengths: list[int]) -> torch.Tensor:
        """The frozen encoder's features of units `indices`, in length-sorted batches:
        (len(indices), H) float32 on the CPU."""
        device = next(self.encoder.parameters()).device
        order = sorted(range(len(indices)), key=lambda k: lengths[indices[k]])
        features = torch.empty(len(indices), self.encoder.output_size)
        for chunk in chunks(order, FEATURE_BATCH):
            batch = tokenized.batch([indices[k] for k in chunk]).to(device)
            features[chunk] = self.encoder(*batch.source).float().cpu()
        return features

    def encoder_fingerprint(self) -> str:
        """sha256 of the encoder's weights, tokenizer and pooling: what its features depend
        on (the feature cache's key)."""
        digest = hashlib.sha256(f"{type(self.encoder).__name__}\0{self.config.model.pooling}"
                                f"\0{self.encoder_tokenizer.fingerprint()}\0".encode())
        for name, tensor in self.encoder.state_dict().items():
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
        return digest.hexdigest()

    def encode(self, ids: torch.Tensor, mask: torch.Tensor,
               features: torch.Tensor | None = None) -> LatentOutput:
        """Codes of units: from the encoder's pooled `features` when given (a frozen
        encoder's, precomputed), else from running the encoder on (ids, mask)."""
        if features is None:
            with torch.no_grad() if self.config.model.freeze_encoder else nullcontext():
                features = self.encoder(ids, mask)
        return self.latent(self.head(features))

    def label_map(self) -> dict[str, int] | None:
        """Label -> component of label-guided modes (saved in config.yaml as prior.labels)."""
        labels = self.config.prior.labels
        return None if labels is None else {label: k for k, label in enumerate(labels)}

    def noisy_source(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """What the encoder reads while training: the batch's source ids with the denoising
        noise of `model.encoder_*` (the decoder still rebuilds the clean ids)."""
        cfg, tokenizer = self.config.model, self.encoder_tokenizer
        return encoder_noise(*batch.source, shuffle=cfg.encoder_shuffle,
                             drop=cfg.encoder_word_drop, blank_rate=cfg.encoder_blank,
                             pad_id=tokenizer.pad_id, blank_id=tokenizer.unk_id)

    def decoder_code(self, z: torch.Tensor) -> torch.Tensor:
        """What the decoder reads of codes z (B, D): while training, z plus N(0, z_noise^2)
        noise, so the decoder also learns the codes around each unit's, where prior samples
        land; with `model.mode_input`, beside it p(k|z) (B, K), the mode it lies in."""
        z = code_noise(z, self.config.model.z_noise, self.training)
        if not self.config.model.mode_input:
            return z
        return torch.cat([z, self.prior.component_log_probs(z).softmax(dim=1)], dim=1)

    def forward(self, batch: Batch, components: torch.Tensor | None = None) -> TextWAEOutput:
        """Loss and parts for a batch; `components` (B,) gives each unit's mode, -1 if free."""
        latent = self.encode(*(self.noisy_source(batch) if self.training else batch.source),
                             features=batch.features)
        inputs, targets = batch.ids[:, :-1], batch.ids[:, 1:]  # (B, T-1) each
        if self.training and self.config.model.word_dropout > 0:
            inputs = word_dropout(inputs, self.config.model.word_dropout, self.tokenizer.unk_id,
                                  self.tokenizer.pad_id)
        target_mask = batch.mask[:, 1:]  # real target positions
        nll = self.decoder.target_nll(inputs, self.decoder_code(latent.z), targets, target_mask)
        # the loss terms in fp32, also when the parts above ran under bf16 autocast
        with torch.autocast(nll.device.type, enabled=False):
            latent, recon = latent.float(), nll.float().mean()
            # a batch statistic: evaluation measures it over all held-out codes instead
            reg = (self.regularizer(latent, self.prior) if self.training
                   else recon.new_zeros(()))
            penalty = (self.config.model.logvar_penalty * logvar_penalty(latent.logvar)
                       + self.prior.penalty())  # a learnable prior's safeguard; else 0
            label = self.prior.label_loss(latent.z, components)
            weights = self.config.regularizer
            matched = label_mmd_term(latent.z, components, self.prior, weights, self.training)
        loss = recon + weights.weight * reg + penalty + weights.label_weight * label + matched
        return TextWAEOutput(loss=loss, recon=recon, reg=reg, penalty=penalty, label=label,
                             latent=latent, tokens=target_mask.sum())

    def _tokenizers(self) -> dict[str, AnyTokenizer]:
        return {"encoder": self.encoder_tokenizer, "decoder": self.tokenizer}

    def _pretrained_modules(self) -> dict[str, nn.Module]:
        modules = {"encoder": getattr(self.encoder, "transformer", None),
                   "decoder": getattr(self.decoder, "lm", None)}
        return {part: modules[part] for part in pretrained.PARTS
                if pretrained.is_pretrained(self.config.model, part)}

    def save_pretrained(self, run_dir: str | Path) -> None:
        """Write config.yaml, names.yaml with data.mask_names, the SentencePiece
        tokenizer.model if a part reads it, a folder per pretrained part (architecture and own
        tokenizer) and model.safetensors, each atomically; the weights last, stamped with the
        tokenizers' fingerprints."""
        run_dir = Path(run_dir)
        checkpoint.atomic_write(run_dir / checkpoint.CONFIG_FILE, self.config.save)
        if self.names is not None:
            checkpoint.atomic_write(run_dir / checkpoint.NAMES_FILE, self.names.save)
        tokenizers = self._tokenizers()
        for tokenizer in tokenizers.values():
            if isinstance(tokenizer, RunTokenizer):
                checkpoint.atomic_write(run_dir / run_tokenizer_file(self.config), tokenizer.save)
                break
        for part, module in self._pretrained_modules().items():
            own = tokenizers[part] if isinstance(tokenizers[part], PretrainedTokenizer) else None
            checkpoint.atomic_write_folder(
                pretrained.run_folder(run_dir, part),
                lambda folder, module=module, own=own: pretrained.save_part(module, own, folder))
        checkpoint.save_tensors(run_dir / checkpoint.WEIGHTS_FILE, self.state_dict(),
                                metadata=self._fingerprints())

    def _fingerprints(self) -> dict[str, str]:
        return {FINGERPRINT_KEYS[part]: tokenizer.fingerprint()
                for part, tokenizer in self._tokenizers().items()}

    @classmethod
    def build(cls, config: Config, run_dir: str | Path, parts_from_run: bool) -> TextWAE:
        """The model `config` describes, before training: the parts read the SentencePiece
        model in `run_dir`, or a pretrained part's own tokenizer. A pretrained part comes from
        its configured directory, or with `parts_from_run` from the run's copy (untrained).
        With data.mask_names, the names come from the run's names.yaml."""
        parts = (pretrained.in_run_directory(config.model, run_dir) if parts_from_run
                 else config.model)
        tokenizers = model_tokenizers(parts, lambda: load_run_tokenizer(config, run_dir))
        names = (Names.load(Path(run_dir) / checkpoint.NAMES_FILE) if config.data.mask_names
                 else None)
        return cls(config, tokenizers["decoder"], tokenizers["encoder"], parts=parts,
                   names=names)

    @classmethod
    def from_pretrained(cls, run_dir: str | Path, device: str = "cpu") -> TextWAE:
        """Rebuild a model from its run directory alone; nothing is unpickled."""
        run_dir = checkpoint.check_model_files(run_dir, ())
        config_path = run_dir / checkpoint.CONFIG_FILE
        try:
            # without config.yaml, the defaults name the other files; all missing are reported
            config = load_run_config(config_path) if config_path.is_file() else Config()
        except ConfigError as error:
            raise checkpoint.RunDirectoryError(f"{run_dir}: {error}") from error
        parts = pretrained.in_run_directory(config.model, run_dir)
        folders = [pretrained.run_folder(run_dir, part).name for part in pretrained.PARTS
                   if pretrained.is_pretrained(parts, part)]
        own = [run_tokenizer_file(config)] if pretrained.needs_sentencepiece(parts) else []
        names = [checkpoint.NAMES_FILE] if config.data.mask_names else []
        checkpoint.check_model_files(run_dir, (*checkpoint.MODEL_FILES, *own, *names,
                                               *folders))
        try:
            model = cls.build(config, run_dir, parts_from_run=True)
        except (TokenizerError, ConfigError) as error:
            raise checkpoint.RunDirectoryError(f"{run_dir}: {error}") from error
        weights, metadata = checkpoint.load_tensors(run_dir / checkpoint.WEIGHTS_FILE)
        for part, tokenizer in model._tokenizers().items():
            if metadata.get(FINGERPRINT_KEYS[part]) != tokenizer.fingerprint():
                source = (run_tokenizer_file(config) if isinstance(tokenizer, RunTokenizer)
                          else f"{pretrained.run_folder(run_dir, part).name}/")
                raise checkpoint.RunDirectoryError(
                    f"{run_dir}: {source} is not the tokenizer model.safetensors was trained with")
        model.load_weights(weights, source=run_dir / checkpoint.WEIGHTS_FILE)
        return model.to(device).eval()

    def load_weights(self, weights: dict[str, torch.Tensor], source: Path | str) -> None:
        """Load a state dict, explaining a mismatch instead of dumping shapes."""
        checkpoint.load_matching(self, weights, source, lambda: self._encoder_size_hint(weights))

    def _encoder_size_hint(self, weights: dict[str, torch.Tensor]) -> str:
        """How to load a run saved before `model.encoder_hidden_size` existed, when each GRU
        encoder direction was as wide as the decoder rather than half as wide by default."""
        recurrent = weights.get("encoder.forward_gru.weight_hh_l0")  # (3 * size, size)
        if recurrent is None or self.config.model.encoder_hidden_size is not None:
            return ""
        return (f"; its GRU encoder has {recurrent.shape[1]} units per direction: add "
                f"`encoder_hidden_size: {recurrent.shape[1]}` under model: in config.yaml")
