"""One local day of the world: where everybody is, hour by hour, and the events it causes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from cellcensus.world.clock import DayClock, day_clock
from cellcensus.world.country import SyntheticCountry
from cellcensus.world.devices import DeviceKind
from cellcensus.world.events import in_time_order, pack_events, serving_cells
from cellcensus.world.faults import inject_faults
from cellcensus.world.machines import machine_events
from cellcensus.world.params import EVENT_TYPES, WorldParams
from cellcensus.world.schedule import person_places, visitor_places
from cellcensus.world.sessions import CarriedDevices, carried_events, mean_session_size
from cellcensus.world.spells import SpellProcess, spells_on
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.tables import DeviceCodes, events_table, presence_table
from cellcensus.world.travel import spell_processes, trip_destinations

DATA = EVENT_TYPES.index("data")
SMS_OUT = EVENT_TYPES.index("sms_out")
MACHINES_PART = 1_000_000
"""Sub-stream of the machines' serving cells (the chunks of carried devices come first)."""
CHUNK_DEVICES = 200_000
"""Devices whose events are drawn together: bounds a day's temporary arrays. Fixed, so
that the random streams (one per chunk) do not depend on the machine."""


@dataclass(frozen=True)
class SimulatedDay:
    """One day's output tables.

    Attributes:
        day: The local calendar date.
        events: The network events, sorted by timestamp (faulty rows at the end).
        presence: Hourly presence of the sampled persons.
        faults: Faulty rows injected, by kind.
    """

    day: date
    events: pa.Table
    presence: pa.Table
    faults: dict[str, int]


@dataclass
class DayMaker:
    """Simulates the days of a country, each from its own random streams.

    A day's streams are keyed by its calendar date, and multi-day spells by their start date,
    and a day changes nothing shared: days may be simulated in any order, or at the same time
    in several threads, and come out the same.
    """

    country: SyntheticCountry
    carried: CarriedDevices = field(init=False)
    codes: DeviceCodes = field(init=False)
    sample_rows: NDArray[np.intp] = field(init=False)
    machine_devices: NDArray[np.int32] = field(init=False)
    processes: dict[str, SpellProcess] = field(init=False)

    def __post_init__(self) -> None:
        country = self.country
        self.carried = _carried(country)
        self.codes = DeviceCodes.of(country)
        self.sample_rows = np.searchsorted(country.agents.person, country.presence_sample)
        self.machine_devices = country.devices.of_kind(DeviceKind.M2M).astype(np.int32)
        self.processes = spell_processes(country)

    def simulate(self, day: date) -> SimulatedDay:
        """Simulate one day.

        Args:
            day: The local day (inside the period).

        Returns:
            The day's events and presence.
        """
        country, params = self.country, self.country.params
        clock = day_clock(day)
        ordinal = day.toordinal()
        activity = random_stream(seed=params.seed, stream=Stream.ACTIVITY, index=ordinal)
        # The day's own copy: it writes the day's trip and stay destinations into it.
        places = country.agents.places.copy()
        persons = person_places(
            agents=country.agents,
            places=places,
            clock=clock,
            params=params,
            stays=spells_on(self.processes["overnight"], day),
            abroad=spells_on(self.processes["abroad"], day),
            plan_trips=lambda rows: trip_destinations(country, rows, activity),
            rng=activity,
        )
        presence = presence_table(
            country=country,
            clock=clock,
            schedule=persons[self.sample_rows],
            places=places[self.sample_rows],
        )
        place_of = np.concatenate([persons, visitor_places(stays=country.stays, clock=clock)])
        del persons
        payloads, times = self._carried_events(clock=clock, place_of=place_of, places=places)
        del place_of, places
        payload, timestamp = self._machine_events(clock=clock)
        payloads.append(payload)
        times.append(timestamp)
        events = in_time_order(payloads=payloads, times=times)
        table = events_table(events=events, codes=self.codes)
        del events
        faults: dict[str, int] = {}
        if params.faults.any:
            rng = random_stream(seed=params.seed, stream=Stream.FAULTS, index=ordinal)
            table, faults = inject_faults(table=table, params=params, rng=rng)
        return SimulatedDay(day=day, events=table, presence=presence, faults=faults)

    def _carried_events(
        self, *, clock: DayClock, place_of: NDArray[np.uint8], places: NDArray[np.int32]
    ) -> tuple[list[NDArray[np.int64]], list[NDArray[np.int64]]]:
        """Packed events and times of the carried devices, a chunk of devices at a time."""
        country, params = self.country, self.country.params
        ordinal = clock.day.toordinal()
        phone_off = spells_on(self.processes["phone_off"], clock.day)
        sites_on = country.network.sites_on(clock.day)
        payloads: list[NDArray[np.int64]] = []
        times: list[NDArray[np.int64]] = []
        for part, start in enumerate(range(0, self.carried.size, CHUNK_DEVICES)):
            stop = min(start + CHUNK_DEVICES, self.carried.size)
            events = carried_events(
                carried=self.carried.part(start, stop),
                clock=clock,
                place_of=place_of,
                places=places,
                phone_off=phone_off.within(start, stop),
                params=params,
                rng=random_stream(seed=params.seed, stream=Stream.EVENTS, index=ordinal, part=part),
            )
            cell = serving_cells(
                location=events.location,
                event_type=events.event_type,
                locations=country.locations,
                network=country.network,
                sites_on=sites_on,
                rng=random_stream(seed=params.seed, stream=Stream.RADIO, index=ordinal, part=part),
            )
            payloads.append(
                pack_events(device=events.device, cell=cell, event_type=events.event_type)
            )
            times.append(events.timestamp)
        return payloads, times

    def _machine_events(self, *, clock: DayClock) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Packed events and times of the machines."""
        country, params = self.country, self.country.params
        ordinal = clock.day.toordinal()
        machines = machine_events(
            machines=country.machines,
            clock=clock,
            roads=country.roads,
            road_offset=country.road_offset,
            rng=random_stream(seed=params.seed, stream=Stream.MACHINE_EVENTS, index=ordinal),
        )
        event_type = np.where(machines.sms, SMS_OUT, DATA).astype(np.uint8)
        cell = serving_cells(
            location=machines.location,
            event_type=event_type,
            locations=country.locations,
            network=country.network,
            sites_on=country.network.sites_on(clock.day),
            rng=random_stream(
                seed=params.seed, stream=Stream.RADIO, index=ordinal, part=MACHINES_PART
            ),
        )
        payload = pack_events(
            device=self.machine_devices[machines.machine], cell=cell, event_type=event_type
        )
        return payload, machines.timestamp


def _carried(country: SyntheticCountry) -> CarriedDevices:
    devices, params = country.devices, country.params
    device = np.flatnonzero(devices.agent >= 0)
    rng = random_stream(seed=params.seed, stream=Stream.SIGNALLING)
    period = max(params.location_update_minutes, 1) * 60_000_000
    data_only = devices.data_only[device]
    return CarriedDevices(
        device=device,
        agent=devices.agent[device],
        rate=devices.rate[device],
        session_size=np.where(data_only, params.session_events[2], mean_session_size(params)),
        data_only=data_only,
        background=devices.background[device],
        signalling_phase_us=(rng.random(device.size) * period).astype(np.int64),
    )


def period_days(params: WorldParams) -> list[date]:
    """The local days of the period, in order."""
    return [params.start + timedelta(days=index) for index in range(params.days)]
