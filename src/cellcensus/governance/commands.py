"""Commands of the governance layer."""

import typer


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the `cellcensus` app."""
