"""The kg domain (being written)."""
