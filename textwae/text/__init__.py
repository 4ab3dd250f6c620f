"""Text to token ids: tokenizers, the token cache and length-bucketed batches."""
