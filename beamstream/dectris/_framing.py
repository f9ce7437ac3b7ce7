"""Bounds check of the bitshuffle-LZ4 block framing before the library decompresses it.

`bitshuffle.decompress_lz4` trusts the block lengths it reads (it is not told the input's size),
so a truncated or lying stream could make it read past the end of the buffer. This kernel walks
the block headers (uint32 big-endian compressed length per block) and checks that every block,
and the raw tail, lies inside the buffer. It decodes nothing.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["bslz4_framing_ok"]


@numba.njit(nogil=True, cache=True)
def bslz4_framing_ok(body: np.ndarray, n_elems: int, block_elems: int, elem_size: int) -> bool:
    """True when the blocks of ``n_elems`` elements in ``body`` (after the 12-byte header) all
    lie inside it: full blocks of ``block_elems``, a last block rounded down to a multiple of 8
    elements, then the remaining ``n_elems % 8`` elements stored raw."""
    if block_elems <= 0 or block_elems % 8 != 0:
        return False
    rest = n_elems % block_elems
    n_blocks = n_elems // block_elems + (1 if rest - rest % 8 > 0 else 0)
    pos = 0
    end = body.shape[0]
    for _ in range(n_blocks):
        if pos + 4 > end:
            return False
        n = (
            (np.int64(body[pos]) << 24)
            | (np.int64(body[pos + 1]) << 16)
            | (np.int64(body[pos + 2]) << 8)
            | np.int64(body[pos + 3])
        )
        pos += 4 + n
        if pos > end:
            return False
    return pos + (n_elems % 8) * elem_size <= end
