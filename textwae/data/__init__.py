"""Corpora: readers, units, the one hash split, streaming and labels; nothing model-specific."""
