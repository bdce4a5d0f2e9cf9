"""The causal domain (being written)."""
