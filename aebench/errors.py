"""The errors a user can fix by editing params.yaml or their files.

Kept in a module of their own, free of any other aebench import, so that a stage which only
reports them (every stage does) does not depend on the schema or the dataset loaders.
"""

from __future__ import annotations


class ParamsError(ValueError):
    """A params.yaml value that is missing, mistyped or out of range."""


class DatasetError(RuntimeError):
    """A dataset that cannot be fetched or whose stored files do not match their manifest."""
