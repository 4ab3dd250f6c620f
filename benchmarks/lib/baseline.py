"""The defaults before issue 9 ("every code decodes to real text"), the baseline that
benchmarks set the defaults of today against."""

from __future__ import annotations

# stated in full, as overrides of default.yaml, so that the baseline keeps its meaning after
# default.yaml changes (tokenizer.vocab_size went from 1000 to 2000: on the demo corpus
# unigram trains the same 948 pieces for either)
BEFORE_ISSUE_9 = [
    "model.latent=deterministic", "model.logvar_penalty=0.0", "model.regularizer=mmd",
    "model.encoder_word_drop=0.0", "model.encoder_blank=0.0", "model.encoder_shuffle=0",
    "model.z_noise=0.0", "model.latent_dim=32", "regularizer.weight=10.0",
    "regularizer.code_memory=0", "regularizer.prior_samples=0", "model.mode_input=false",
    "tokenizer.model_type=unigram", "regularizer.label_mmd_weight=0.0",
    "generation.transfer_strength=1.0", "generation.transfer_steps=1"]

# the defaults before the code went to 64 numbers with each label matched to its own mode:
# the cases measured against those defaults keep their meaning
BEFORE_D64 = ["model.latent_dim=32", "regularizer.label_mmd_weight=0.0",
              "generation.transfer_strength=1.0", "generation.transfer_steps=1"]
