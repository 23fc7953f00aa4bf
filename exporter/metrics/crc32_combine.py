"""CRC-32 of concatenated bytes from the CRC-32 of each piece (zlib's ``crc32_combine``, which
Python's ``zlib`` does not expose).

The gzip trailer of ``/metrics`` holds the CRC-32 of the whole plain body, tens of MB with a
fleet: computing it at each assembly cost ~25-50 ms. Each chunk's CRC and its "shift" (the
operator that moves a CRC past the chunk's length) are computed once, when the chunk is
rendered; an assembly then combines them, a few microseconds a chunk. The arithmetic is
zlib's (crc32.c, ``multmodp`` and ``x2nmodp``): polynomials over GF(2) modulo the CRC-32
polynomial, bit-reflected.
"""

from __future__ import annotations

# The CRC-32 polynomial, reflected.
POLYNOMIAL = 0xEDB88320
# x^0 in the reflected representation.
ONE = 1 << 31


def multiply(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC-32 polynomial."""
    mask, product = ONE, 0
    while mask and a:
        if a & mask:
            product ^= b
            a ^= mask
        mask >>= 1
        b = (b >> 1) ^ POLYNOMIAL if b & 1 else b >> 1
    return product


def _powers() -> tuple[int, ...]:
    """x^(2^k) modulo the polynomial, for k = 0..63."""
    powers = [ONE >> 1]  # x^1
    for _ in range(63):
        powers.append(multiply(powers[-1], powers[-1]))
    return tuple(powers)


X_POWERS = _powers()


def crc32_shift(length: int) -> int:
    """The operator x^(8 * length) that moves a CRC past ``length`` bytes of zeros."""
    operator, k = ONE, 3  # bytes are 8 = 2^3 bits
    while length:
        if length & 1:
            operator = multiply(X_POWERS[k % 64], operator)
        length >>= 1
        k += 1
    return operator


def crc32_combine(first: int, second: int, second_shift: int) -> int:
    """CRC-32 of A + B, given CRC-32 of A, CRC-32 of B and ``crc32_shift(len(B))``."""
    return multiply(second_shift, first) ^ second
