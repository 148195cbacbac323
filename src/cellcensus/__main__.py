"""``python -m cellcensus ...``; also the application file given to ``spark-submit``."""

from cellcensus.cli import app

if __name__ == "__main__":
    app(prog_name="cellcensus")
