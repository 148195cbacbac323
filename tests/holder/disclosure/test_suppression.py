import numpy as np

from cellcensus.holder.disclosure.suppression import primary_suppression, secondary_suppression


def run(values, hidden, children):
    return secondary_suppression(
        values=np.array(values, float), suppressed=np.array(hidden), children=children
    ).tolist()


def test_primary_suppression_is_at_or_below_the_threshold():
    mask = primary_suppression(values=np.array([0.0, 15.0, 15.01, 300.0]), min_count=15)
    assert mask.tolist() == [True, True, False, False]


def test_lone_suppressed_child_takes_its_smallest_sibling_with_it():
    # cells: 0..2 children of 3
    assert run([12, 50, 30, 92], [True, False, False, False], [(), (), (), (0, 1, 2)]) == [
        True,
        False,
        True,
        False,
    ]


def test_two_suppressed_children_are_safe():
    out = run([12, 14, 30, 56], [True, True, False, False], [(), (), (), (0, 1, 2)])
    assert out == [True, True, False, False]


def test_single_child_parent_is_suppressed_with_its_child():
    # 0 -> 1 -> 2 (a chain, like Brussels: arrondissement = province = region)
    assert run([12, 12, 12], [True, False, False], [(), (0,), (1,)]) == [True, True, True]


def test_secondarily_suppressed_parent_hides_one_of_its_children():
    # leaves 0,1 -> parent 4; leaves 2,3 -> parent 5; parents 4,5 -> top 6
    children = [(), (), (), (), (0, 1), (2, 3), (4, 5)]
    values = [5, 5, 100, 200, 10, 300, 310]
    hidden = [True, True, False, False, True, False, False]
    out = run(values, hidden, children)
    # 4 is hidden, so 5 (its only sibling) goes; then 5 = 2 + 3 exposes it: 2 goes too
    assert out == [True, True, True, False, True, True, False]
