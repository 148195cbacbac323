"""The `cellcensus` command line: one entry point, commands contributed by each layer.

A layer is imported when one of its commands runs, not to list them: `cellcensus --help` or
`cellcensus cases` need not load the engines, the synthetic world and the service (seconds).
"""

from __future__ import annotations

import difflib
import importlib
import inspect

import typer
from typer import _click as click  # the Click that Typer carries (its own, not the package)
from typer.core import TyperCommand, TyperGroup, TyperOption

COMMANDS: dict[str, tuple[str, str]] = {
    "synth": (
        "cellcensus.world.commands",
        "Generate a synthetic Belgium: network events, cells and ground truth.",
    ),
    "ingest": (
        "cellcensus.holder.commands",
        "Ingest a delivery into the holder's store and allocate its cells to municipalities.",
    ),
    "store": (
        "cellcensus.holder.commands",
        "Look after the holder's store: retention purges, key rotation, what it holds.",
    ),
    "algorithms": (
        "cellcensus.holder.algorithms.commands",
        "List the algorithm catalogue, or one algorithm's parameters.",
    ),
    "run": (
        "cellcensus.holder.algorithms.commands",
        "Run one algorithm through the enclave (a recorded job); write only what is released.",
    ),
    "serve": (
        "cellcensus.holder.api.commands",
        "Start the safe environment's HTTP service over a store.",
    ),
    "users": (
        "cellcensus.holder.api.commands",
        "Users of the service: add, grant scopes, budgets, set a password, deactivate, "
        "activate, list.",
    ),
    "policies": (
        "cellcensus.holder.api.commands",
        "Release policies: disclosure, approval, who may run what.",
    ),
    "audit": (
        "cellcensus.holder.api.commands",
        "The hash-chained audit log, and failed jobs' diagnostics.",
    ),
    "estimate": (
        "cellcensus.nso.commands",
        "Estimate usual residents per municipality from a usual_residence release, vs census 2011.",
    ),
    "demo": (
        "cellcensus.demo",
        "Estimate usual residents per Belgian municipality from mobile data, vs census 2011.",
    ),
    "assess": (
        "cellcensus.governance.commands",
        "Assess the benefits and risks of sharing data, and recommend a business model.",
    ),
    "cases": (
        "cellcensus.governance.commands",
        "Real case studies of sharing private data for public statistics.",
    ),
}
"""Each command's layer (a module with `register(app)`) and its line in the help."""


def layer_commands(module: str) -> TyperGroup:
    """The commands a layer registers, as a Click group."""
    app = typer.Typer()
    importlib.import_module(module).register(app)
    group = typer.main.get_group(app)
    _unfold_help(group)
    return group


def _unfold_help(command: click.Command) -> None:
    r"""Join the lines of each paragraph of the command's help, and its subcommands'.

    Typer keeps a docstring's line breaks after its first paragraph, which then break
    mid-sentence at the terminal's width; a paragraph marked ``\b`` keeps its lines.
    """
    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(
            text if text.startswith("\b") else " ".join(text.split("\n")) for text in paragraphs
        )
    for subcommand in getattr(command, "commands", {}).values():
        _unfold_help(subcommand)


class LayeredGroup(TyperGroup):
    """The root group: lists COMMANDS from their help lines, imports a layer to run one."""

    listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, in the help's order."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command from its layer; while the help is written, its help line only."""
        if cmd_name not in COMMANDS:
            return None
        module, short_help = COMMANDS[cmd_name]
        if self.listing:
            return TyperCommand(name=cmd_name, help=short_help)
        return layer_commands(module).commands[cmd_name]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """The command, or a refusal that names the command a misspelling was meant to be."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as error:
            # As Typer words it for the layers' subcommands, which it knows before they run.
            close = difflib.get_close_matches(args[0], COMMANDS, n=1) if args else []
            if close:
                error.message = f"{error.message.rstrip('.')}. Did you mean {close[0]!r}?"
            raise

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The help, listing the commands without importing their layers."""
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


def _option_type(option: TyperOption, ctx: click.Context) -> str | None:
    """The type beside an option in the help: none for a flag, which takes no value."""
    return None if option.is_flag and not option.count else _value_type(option, ctx)


# Typer 0.29 writes `<bool>` beside every flag (`--help <bool>`), as if it took a value.
_value_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _option_type  # type: ignore[method-assign,assignment]


FIRST_STEPS = (
    "cellcensus demo",
    "cellcensus synth --out world --scale 0.002 --days 2",
    "cellcensus ingest --dataset world --store store",
    "cellcensus run usual_residence --store store --out residents.csv",
    "cellcensus estimate residents.csv --out estimates",
)
"""The help's first steps: the whole chain, then its steps one by one (a tiny world), the
holder's then the statistics office's."""

app = typer.Typer(
    name="cellcensus",
    cls=LayeredGroup,
    no_args_is_help=True,
    epilog=(
        f"Start with `{FIRST_STEPS[0]}` (the whole chain in about a minute: report in "
        "cellcensus-demo/report.html), or take its steps one by one:\n\n"
        + "\n\n".join(f"  {step}" for step in FIRST_STEPS[1:])
        + "\n\nEach command's options: cellcensus COMMAND --help. Documentation: README.md "
        "and docs/ in the cellcensus repository."
    ),
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Official statistics from mobile network data, computed where the data is."""
