from __future__ import annotations

import numpy as np

from cellcensus.world import WorldParams
from cellcensus.world.country import SyntheticCountry
from cellcensus.world.population import build_residents
from cellcensus.world.subscription import HOLDER, NO_PHONE, step_values, subscribe
from cellcensus.world.territory import belgium_territory


def _subscriptions(params: WorldParams):  # type: ignore[no-untyped-def]
    territory = belgium_territory()
    residents = build_residents(territory=territory, params=params)
    return territory, residents, subscribe(territory=territory, residents=residents, params=params)


def test_phone_ownership_follows_age() -> None:
    params = WorldParams(scale=0.01, seed=5)
    _, residents, subscriptions = _subscriptions(params)
    owns = subscriptions.operator != NO_PHONE
    expected = step_values(params.phone_ownership, residents.age)
    for low, high in [(0, 5), (8, 9), (12, 14), (25, 54), (75, 84), (85, 110)]:
        group = (residents.age >= low) & (residents.age <= high)
        share, target = owns[group].mean(), expected[group].mean()
        assert abs(share - target) <= 4 * np.sqrt(target * (1 - target) / group.sum()) + 0.005
    assert owns[residents.age < 6].sum() == 0


def test_holder_share_of_owners_is_the_market_share_and_differs_by_region() -> None:
    params = WorldParams(scale=0.01, seed=5)
    territory, residents, subscriptions = _subscriptions(params)
    owns = subscriptions.operator != NO_PHONE
    holder = subscriptions.operator == HOLDER
    assert abs(holder.sum() / owns.sum() - params.market_share) < 0.01
    region = territory.regions[residents.home_area]
    flanders = holder[owns & (region == "2000")].mean()
    brussels = holder[owns & (region == "4000")].mean()
    assert flanders > brussels + 0.05
    # Three operators, the holder the largest.
    counts = np.bincount(subscriptions.operator[owns])
    assert counts.size == 3 and counts.argmax() == HOLDER


def test_second_sims_are_adults_of_any_operator() -> None:
    params = WorldParams(scale=0.01, seed=5)
    _, residents, subscriptions = _subscriptions(params)
    second = subscriptions.second_operator != NO_PHONE
    assert residents.age[second].min() >= 18
    owners = (subscriptions.operator != NO_PHONE) & (residents.age >= 18)
    assert abs(second.sum() / owners.sum() - params.secondary_sim_share) < 0.01
    # The holder's second SIMs include some carried by competitors' customers.
    holder_second = subscriptions.second_operator == HOLDER
    assert (subscriptions.operator[holder_second] != HOLDER).any()


def test_device_kinds_and_rates(small_country: SyntheticCountry) -> None:
    devices = small_country.devices
    kinds = np.bincount(devices.kind, minlength=4)
    assert kinds.min() > 0
    assert np.all(devices.person[devices.kind <= 1] >= 0)
    assert np.all(devices.person[devices.kind >= 2] == -1)
    assert np.all(devices.agent[devices.kind == 2] == -1)
    assert len(set(devices.user_id)) == devices.size
    assert np.all(np.char.startswith(devices.user_id[devices.kind == 2], "3277"))
    assert np.all(devices.mcc[devices.kind == 3] != 206)
    # M2M SIMs per resident subscriber, and the heavy tail of the rates.
    assert abs(kinds[2] / kinds[0] - small_country.params.m2m_per_subscriber) < 0.01
    rate = devices.rate[devices.kind == 0]
    top = np.sort(rate)[::-1][: rate.size // 10].sum() / rate.sum()
    assert top > 0.3
