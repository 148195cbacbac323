"""The persons of the world and the facts about all of them (not only the simulated ones)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.employment import NOT_WORKING, Employment, assign_work
from cellcensus.world.migration import Migrations, draw_migrations
from cellcensus.world.params import WorldParams
from cellcensus.world.population import Residents, build_residents
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.subscription import Subscriptions, subscribe
from cellcensus.world.territory import (
    Settlements,
    Territory,
    belgium_territory,
    build_settlements,
)


@dataclass(frozen=True)
class People:
    """The persons and what the whole population needs (not only the simulated persons).

    Attributes:
        territory: The areas.
        settlements: Their village and town centres.
        residents: The persons.
        employment: Their work areas and hours.
        subscriptions: Their operators.
        migrations: Who moves during the period.
        presence_sample: Sorted persons who get hourly presence truth.
        tracked: Sorted persons simulated hour by hour (the holder's subscribers and the
            presence sample).
        pupil: Per person, whether they go to school or college.
    """

    territory: Territory
    settlements: Settlements
    residents: Residents
    employment: Employment
    subscriptions: Subscriptions
    migrations: Migrations
    presence_sample: NDArray[np.intp]
    tracked: NDArray[np.intp]
    pupil: NDArray[np.bool_]


def build_people(params: WorldParams) -> People:
    """Persons, their work, operators and moves, and who is simulated hour by hour."""
    territory = belgium_territory()
    settlements = build_settlements(
        territory=territory, rng=random_stream(seed=params.seed, stream=Stream.SETTLEMENTS)
    )
    residents = build_residents(territory=territory, params=params)
    employment = assign_work(territory=territory, residents=residents, params=params)
    subscriptions = subscribe(territory=territory, residents=residents, params=params)
    migrations = draw_migrations(territory=territory, residents=residents, params=params)
    sample = _presence_sample(persons=residents.size, params=params)
    holder = np.union1d(subscriptions.holder_primary, subscriptions.holder_secondary)
    low, high = params.school_ages
    pupil = (residents.age >= low) & (residents.age <= high) & (employment.work_area == NOT_WORKING)
    return People(
        territory=territory,
        settlements=settlements,
        residents=residents,
        employment=employment,
        subscriptions=subscriptions,
        migrations=migrations,
        presence_sample=sample,
        tracked=np.union1d(holder, sample).astype(np.intp),
        pupil=pupil,
    )


def _presence_sample(*, persons: int, params: WorldParams) -> NDArray[np.intp]:
    """A simple random sample of at most `presence_persons` persons, sorted."""
    rng = random_stream(seed=params.seed, stream=Stream.PRESENCE_SAMPLE)
    size = min(params.presence_persons, persons)
    return np.sort(rng.choice(persons, size=size, replace=False)).astype(np.intp)
