"""What the commands share: Rich consoles, one-line user errors, their output folders."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, ProgressColumn

from cellcensus.errors import CellcensusError

console = Console(log_path=False)  # a step logged says when, not which source line
err_console = Console(stderr=True)


def live_progress(
    *columns: ProgressColumn | str, on: Console = console, shown: bool = True
) -> Progress:
    """A progress display on a terminal, and none when the output goes to a file or a pipe.

    Off a terminal Rich ends a display with an empty line (a blank line before the next
    output, an error too), and a transient display shows nothing there anyway.
    """
    return Progress(*columns, console=on, transient=True, disable=not (shown and on.is_interactive))


P = ParamSpec("P")
R = TypeVar("R")


def user_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Make a command print a CellcensusError as one red line (exit 2), not a traceback."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except CellcensusError as error:
            # Escaped: a path or a value in the message may hold brackets Rich reads as markup.
            message = escape(str(error))
            err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


def output_folder(out: Path, *, marker: str, made_by: str) -> Path:
    """Create `out` for a command's outputs, or take back a folder it made; refuse the rest.

    A folder that holds anything is taken only if `marker` is in it (the command leaves it
    there): a command overwrites its own files, never what it did not write.

    Raises:
        CellcensusError: `out` is a file, or a non-empty folder without `marker`.
    """
    if out.exists() and not out.is_dir():
        raise CellcensusError(f"--out {out} is a file; give a folder path")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise CellcensusError(
            f"--out {out} is a non-empty folder not made by {made_by}; give a new or empty one"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / marker).touch()
    return out
