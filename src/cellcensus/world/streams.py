"""Independent, reproducible random streams: one per purpose and, for events, one per day."""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """What a random stream is used for; the value is part of its seed and must not change."""

    TERRITORY = 1
    POPULATION = 2
    EMPLOYMENT = 3
    NETWORK = 4
    SUBSCRIPTION = 5
    ACTIVITY = 6
    EVENTS = 7
    PRESENCE_SAMPLE = 8
    SETTLEMENTS = 9
    PLACES = 10
    OWNERSHIP = 11
    MACHINES = 12
    ROAMING = 13
    MIGRATION = 14
    RADIO = 15
    PHONE_OFF = 16
    OVERNIGHT = 17
    ABROAD = 18
    OUTINGS = 19
    MACHINE_EVENTS = 20
    FAULTS = 21
    SIGNALLING = 22


def random_stream(
    *, seed: int, stream: Stream, index: int = 0, part: int = 0
) -> np.random.Generator:
    """A generator seeded by (seed, stream, index, part), independent of every other one.

    Deriving each day's generator from the day itself (not from the previous day's state) keeps
    days reproducible on their own: a day is the same whether or not earlier days were made.

    Args:
        seed: The world's seed.
        stream: The purpose of the draws.
        index: A sub-stream, e.g. the day's ordinal number.
        part: A sub-sub-stream, e.g. a chunk of devices within the day.

    Returns:
        A PCG64 generator.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, int(stream), index, part]))
