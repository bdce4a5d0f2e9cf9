"""Errors of the run store. Messages are written for the person at the terminal."""

from __future__ import annotations


class RunStoreError(Exception):
    """A run or the store cannot be read or changed as asked."""


class RunNotFound(RunStoreError, LookupError):
    """No run answers to the given reference."""


class RunExists(RunStoreError):
    """A run with that name is already in the store."""


class RunIsRunning(RunStoreError):
    """The operation would pull a live run's directory from under it."""
