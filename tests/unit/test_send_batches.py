"""A response body's parts go out in batches: small parts joined, large ones untouched."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exporter.web.httpserver import send_batches


def test_small_parts_are_joined_and_a_large_one_goes_alone_uncopied() -> None:
    large = b"x" * 100
    batches = list(send_batches([b"ab", b"cd", large, b"ef", b"g" * 7, b"h"], size=10))
    assert batches == [b"abcd", large, b"efgggggggh"]
    assert batches[1] is large


def test_no_parts_are_no_batches() -> None:
    assert list(send_batches([], size=10)) == []


@given(st.lists(st.binary(max_size=40)), st.integers(min_value=1, max_value=64))
def test_the_batches_are_the_parts_in_order(parts: list[bytes], size: int) -> None:
    batches = list(send_batches(parts, size=size))
    assert b"".join(batches) == b"".join(parts)
    # A batch of joined small parts holds less than size plus its last part.
    assert all(len(batch) < 2 * size or batch in parts for batch in batches)
