"""Terminal output shared by the commands: Rich consoles and one-line user errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
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
