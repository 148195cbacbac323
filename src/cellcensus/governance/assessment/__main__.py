"""`python -m cellcensus.governance.assessment`: the `assess` command on its own."""

import typer

from cellcensus.governance.commands import assess_command

if __name__ == "__main__":
    typer.run(assess_command)
