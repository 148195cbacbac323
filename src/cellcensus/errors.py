"""Errors a user can cause: shown as one line naming what is wrong and what to do."""

import difflib
from collections.abc import Iterable

SCHEMA_DOC = "docs/schema.md in the cellcensus repository"
"""Where messages send users for the input contract (a pip install has no docs/ folder)."""


class CellcensusError(Exception):
    """A mistake in input or parameters; the CLI prints it without a traceback."""


class InputDataError(CellcensusError):
    """Input files break the docs/schema.md contract in a way that stops processing."""


class DisclosureError(CellcensusError):
    """A release was refused by the disclosure policy or the privacy budget."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """The words " (did you mean 'x'?)" where `name` looks like a misspelling of `x`, else ""."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
