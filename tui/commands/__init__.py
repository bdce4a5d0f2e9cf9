"""Headless sub-commands of `nsm-tui` (one module per group)."""
