"""cellcensus: official statistics from mobile network data, computed where the data is."""

__version__ = "0.1.0"
