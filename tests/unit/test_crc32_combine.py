"""CRC-32 of concatenated bytes from each piece's CRC-32 and length, as zlib.crc32 of the whole."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from exporter.metrics.crc32_combine import crc32_combine, crc32_shift


def test_known_pieces_combine_to_the_crc_of_the_whole() -> None:
    first, second = b"The quick brown fox ", b"jumps over the lazy dog"
    combined = crc32_combine(zlib.crc32(first), zlib.crc32(second), crc32_shift(len(second)))
    assert combined == zlib.crc32(first + second) == 0x414FA339


def test_an_empty_piece_changes_nothing() -> None:
    assert crc32_combine(0x414FA339, 0, crc32_shift(0)) == 0x414FA339
    assert crc32_combine(0, zlib.crc32(b"abc"), crc32_shift(3)) == zlib.crc32(b"abc")


def test_a_large_piece_combines() -> None:
    first, second = bytes(range(256)) * 3, b"\xff" * (5 * 1024 * 1024 + 7)
    combined = crc32_combine(zlib.crc32(first), zlib.crc32(second), crc32_shift(len(second)))
    assert combined == zlib.crc32(first + second)


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_any_pieces_combine_in_order_to_the_crc_of_their_concatenation(pieces) -> None:
    crc = 0
    for piece in pieces:
        crc = crc32_combine(crc, zlib.crc32(piece), crc32_shift(len(piece)))
    assert crc == zlib.crc32(b"".join(pieces))
