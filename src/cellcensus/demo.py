"""`cellcensus demo`: synthetic Belgium -> holder store -> enclave release -> NSO estimates."""

import typer


def register(app: typer.Typer) -> None:
    """Add the demo command to the `cellcensus` app."""
