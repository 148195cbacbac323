"""The `cellcensus` command line: one entry point, commands contributed by each layer."""

from __future__ import annotations

import typer

from cellcensus import demo
from cellcensus.governance import commands as governance_commands
from cellcensus.holder import commands as holder_commands
from cellcensus.holder.algorithms import commands as algorithm_commands
from cellcensus.holder.api import commands as service_commands
from cellcensus.world import commands as world_commands

app = typer.Typer(
    name="cellcensus",
    help="Official statistics from mobile network data, computed where the data is.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for layer in (
    world_commands,
    holder_commands,
    algorithm_commands,
    service_commands,
    demo,
    governance_commands,
):
    layer.register(app)
