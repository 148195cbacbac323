"""``python -m cellcensus.holder.api serve --store STORE``: the service's commands alone."""

import typer

from cellcensus.holder.api.commands import register

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
register(app)

if __name__ == "__main__":
    app()
