"""Pure arithmetic of a plan of submission-time slices: packing the jobs seen, tighter where the
list moved."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exporter.api.wire.pages import TimeSlice
from exporter.polling.read.slices import plan_from_seen, within


def test_a_plan_packs_a_page_a_slice_and_sixteen_where_the_list_moved() -> None:
    window = TimeSlice(0, 999)
    submitted = list(range(100, 200))  # one job a second
    plan = plan_from_seen(submitted, window, moving=[TimeSlice(150, 169)])
    assert plan == [
        TimeSlice(0, 119),  # 20 jobs
        TimeSlice(120, 139),  # 20
        TimeSlice(140, 155),  # 16: it ends inside the slice that grew
        TimeSlice(156, 175),  # 20: from 170 on a full page again
        TimeSlice(176, 195),
        TimeSlice(196, 999),
    ]


@given(
    st.lists(st.integers(0, 500), max_size=40, unique=True),
    st.integers(-5, 510),
)
def test_a_second_is_within_the_slices_exactly_when_one_holds_it(
    cuts: list[int], second: int
) -> None:
    bounds = sorted(cuts)
    pairs = zip(bounds[::2], bounds[1::2], strict=False)  # an odd last bound is left out
    pieces = [TimeSlice(a, b - 1) for a, b in pairs if b - 1 > a]
    starts = [piece.start for piece in pieces]
    assert within(second, pieces, starts) == any(piece.contains(second) for piece in pieces)
