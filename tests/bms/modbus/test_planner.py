"""Read planner: fewest reads, never more than 125 registers, every span covered."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.bms.modbus.planner import MAX_READ, ReadBlock, plan_reads


def test_adjacent_and_overlapping_points_become_one_read() -> None:
    assert plan_reads([(10, 2), (12, 1), (11, 3)]) == [ReadBlock(10, 4)]


def test_small_gap_is_bridged_large_gap_is_not() -> None:
    assert plan_reads([(0, 1), (5, 1)], max_gap=4) == [ReadBlock(0, 6)]
    assert plan_reads([(0, 1), (6, 1)], max_gap=4) == [ReadBlock(0, 1), ReadBlock(6, 1)]
    assert plan_reads([(0, 1), (2, 1)], max_gap=0) == [ReadBlock(0, 1), ReadBlock(2, 1)]


def test_long_span_is_split_at_125() -> None:
    assert plan_reads([(40000, 300)]) == [
        ReadBlock(40000, 125),
        ReadBlock(40125, 125),
        ReadBlock(40250, 50),
    ]


def test_bridging_never_exceeds_the_read_limit() -> None:
    blocks = plan_reads([(0, 120), (124, 10)], max_gap=10)
    assert blocks == [ReadBlock(0, 125), ReadBlock(125, 9)]


def test_byd_style_areas_plan_to_three_reads() -> None:
    spans = [
        (102, 16),
        (118, 16),
        (142, 8),
        (150, 16),
        (202, 1),
        (303, 1),
        (308, 1),
        (312, 2),
        (323, 1),
    ]
    assert plan_reads(spans, max_gap=24) == [
        ReadBlock(102, 64),
        ReadBlock(202, 1),
        ReadBlock(303, 21),
    ]


@pytest.mark.parametrize("bad", [{"max_count": 0}, {"max_count": 126}, {"max_gap": -1}])
def test_bad_parameters_are_rejected(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        plan_reads([(0, 1)], **bad)


def test_span_outside_register_space_is_rejected() -> None:
    with pytest.raises(ValueError):
        plan_reads([(65535, 2)])


spans_strategy = st.lists(
    st.tuples(st.integers(0, 2000), st.integers(1, 200)), min_size=0, max_size=30
)


@settings(max_examples=300, deadline=None)
@given(spans=spans_strategy, max_gap=st.integers(0, 40), max_count=st.integers(1, MAX_READ))
def test_plan_covers_every_span_within_limits(
    spans: list[tuple[int, int]], max_gap: int, max_count: int
) -> None:
    blocks = plan_reads(spans, max_gap=max_gap, max_count=max_count)
    covered = {a for b in blocks for a in range(b.address, b.end)}
    wanted = {a for addr, n in spans for a in range(addr, addr + n)}
    assert wanted <= covered
    assert all(1 <= b.count <= max_count for b in blocks)
    assert all(x.end <= y.address for x, y in itertools.pairwise(blocks))
    # only gaps up to max_gap are ever read without being wanted
    for block in blocks:
        run = 0
        for address in range(block.address, block.end):
            run = 0 if address in wanted else run + 1
            assert run <= max_gap
    # never more reads than reading each maximal run of wanted registers on its own
    runs: list[int] = []
    previous = None
    for address in sorted(wanted):
        if previous is None or address != previous + 1:
            runs.append(0)
        runs[-1] += 1
        previous = address
    assert len(blocks) <= sum(-(-n // max_count) for n in runs)
