import pytest

from cellcensus import reference


def test_census_totals_match_the_published_figures():
    census = reference.census_population()
    assert len(census) == 589
    assert census["population"].sum() == 11_000_638
    smallest = census.loc[census["population"].idxmin()]
    assert (smallest["name_nl"], smallest["population"]) == ("Herstappe", 85)
    assert (census["male"] + census["female"] == census["population"]).all()


def test_age_sex_table_adds_up_to_the_census():
    long = reference.census_age_sex()
    per_area = long.groupby("area_code")["population"].sum()
    census = reference.census_population().set_index("area_code")["population"]
    assert per_area.reindex(census.index).eq(census).all()


def test_boundaries_match_census_codes_one_to_one():
    areas = reference.municipalities()
    census = reference.census_population()
    assert set(areas["area_code"]) == set(census["area_code"])
    assert areas["geometry"].map(lambda g: g.is_valid).all()
    assert areas.loc[areas["region"] == "4000", "province"].eq("4000").all()
    assert len(areas.loc[areas["region"] == "4000"]) == 19


def test_commuting_matrix_total_and_own_arrondissement_share():
    flows = reference.commuting_matrix()
    assert flows["workers"].sum() == 4_304_172
    own = flows[flows["home_arrondissement"] == flows["work_arrondissement"]]["workers"].sum()
    assert own / flows["workers"].sum() == pytest.approx(0.6296, abs=1e-4)
    brussels_jobs = flows[flows["work_arrondissement"] == "21000"]["workers"].sum()
    assert brussels_jobs == 695_183


def test_crosswalk_gives_every_municipality_a_commuting_arrondissement():
    crosswalk = reference.crosswalk_2019()
    arrondissements = set(reference.commuting_matrix()["home_arrondissement"])
    assert len(crosswalk) == 589
    assert set(crosswalk["arrondissement_2019"]) <= arrondissements


def test_register_years_and_refusal_of_others():
    assert reference.register_population(2015)["population"].sum() == 11_209_044
    with pytest.raises(ValueError, match="2011 and 2015"):
        reference.register_population(2020)


def test_provenance_ships_beside_the_data():
    from importlib.resources import files

    text = (files("cellcensus.reference") / "data" / "belgium" / "PROVENANCE.md").read_text()
    assert "Statbel" in text and "licence" in text
    assert "be_geonames_places_500.csv" in text and "CC BY 4.0" in text


def test_places_are_belgian_towns_of_five_hundred_or_more():
    places = reference.places()
    assert len(places) == 2256 and places["geonameid"].is_unique
    # Within Belgium's bounding box; populations of 500 or more, unknown (0) for six.
    assert places["latitude"].between(49.49, 51.51).all()
    assert places["longitude"].between(2.54, 6.41).all()
    assert (places["population"] == 0).sum() == 6
    assert places.loc[places["population"] > 0, "population"].min() >= 500
    leuven = places.set_index("name").loc["Leuven"]
    assert (round(leuven["latitude"], 2), round(leuven["longitude"], 2)) == (50.88, 4.70)


def test_every_parent_area_of_the_municipalities_has_its_names():
    areas = reference.municipalities()
    for level, count in (("arrondissement", 43), ("province", 11), ("region", 3)):
        names = reference.area_names(level)
        assert set(names["area_code"]) == set(areas[level]) and len(names) == count
        assert names[["name_nl", "name_fr"]].notna().all().all()
    provinces = reference.area_names("province").set_index("area_code")
    assert provinces.loc["20001", "name_nl"] == "Provincie Vlaams-Brabant"
    assert provinces.loc["4000", "name_fr"] == "Région de Bruxelles-Capitale"  # no province
    with pytest.raises(ValueError, match="levels: arrondissement, province, region"):
        reference.area_names("commune")
