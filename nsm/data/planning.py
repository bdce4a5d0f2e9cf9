"""The planning domain (being written)."""
