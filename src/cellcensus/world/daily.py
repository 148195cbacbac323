"""One local day of the world: where everybody is, hour by hour, and the events it causes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from cellcensus.world.activity import daily_places, day_clock
from cellcensus.world.country import SyntheticCountry
from cellcensus.world.employment import NOT_WORKING
from cellcensus.world.events import day_events
from cellcensus.world.identifiers import cell_ids
from cellcensus.world.params import WorldParams
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.tables import events_table, presence_table


@dataclass(frozen=True)
class DailyInputs:
    """What every day needs from the country, as arrays built once.

    Attributes:
        user_ids: Identifier of each device.
        tacs: Handset TAC of each device.
        cell_ids: Identifier of each cell.
        working: For each tracked person, whether the person works.
        device_rows: Each device's owner, as a row of the tracked persons.
        device_place_cells: (devices, 3) serving cell of each device's owner's places.
        sample_rows: Each person of the presence sample, as a row of the tracked persons.
    """

    user_ids: pa.StringArray
    tacs: pa.StringArray
    cell_ids: pa.StringArray
    working: NDArray[np.bool_]
    device_rows: NDArray[np.intp]
    device_place_cells: NDArray[np.int32]
    sample_rows: NDArray[np.intp]

    @classmethod
    def of(cls, country: SyntheticCountry) -> DailyInputs:
        """Gather the daily inputs of a country."""
        subscribers = country.subscribers
        return cls(
            user_ids=pa.array(subscribers.user_id, type=pa.string()),
            tacs=pa.array(subscribers.tac, type=pa.string()),
            cell_ids=pa.array(cell_ids(country.network.size), type=pa.string()),
            working=country.employment.work_area[country.tracked] != NOT_WORKING,
            device_rows=np.searchsorted(country.tracked, subscribers.person),
            device_place_cells=country.place_cells[subscribers.person],
            sample_rows=np.searchsorted(country.tracked, country.presence_sample),
        )


@dataclass(frozen=True)
class SimulatedDay:
    """One day's output tables.

    Attributes:
        day: The local calendar date.
        events: The network events, sorted by timestamp.
        presence: Hourly presence of the sampled persons.
    """

    day: date
    events: pa.Table
    presence: pa.Table


def simulate_day(
    *, country: SyntheticCountry, inputs: DailyInputs, params: WorldParams, index: int
) -> SimulatedDay:
    """Simulate day `index` of the period from its own random streams.

    The streams are keyed by the calendar date, not by the position in the period, so a day
    is the same in every world of the same seed and scale that contains it: a longer period
    extends a shorter one instead of replacing it.

    Args:
        country: The world.
        inputs: The country's daily inputs.
        params: The world's parameters.
        index: Day of the period, from 0.

    Returns:
        The day's events and presence.
    """
    clock = day_clock(params.start + timedelta(days=index))
    day_number = clock.day.toordinal()
    places = daily_places(
        clock=clock,
        working=inputs.working,
        params=params,
        rng=random_stream(seed=params.seed, stream=Stream.ACTIVITY, index=day_number),
    )
    events = day_events(
        clock=clock,
        daily_events=country.subscribers.daily_events,
        places=places[inputs.device_rows],
        place_cells=inputs.device_place_cells,
        params=params,
        rng=random_stream(seed=params.seed, stream=Stream.EVENTS, index=day_number),
    )
    return SimulatedDay(
        day=clock.day,
        events=events_table(
            events=events, user_ids=inputs.user_ids, tacs=inputs.tacs, cell_ids=inputs.cell_ids
        ),
        presence=presence_table(country=country, clock=clock, places=places[inputs.sample_rows]),
    )
