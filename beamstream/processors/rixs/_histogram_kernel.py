"""Numba kernel adding curvature-corrected photon hits to per-slot energy histograms."""

from __future__ import annotations

from numba import njit

__all__ = ["histogram_hits"]


@njit(nogil=True, cache=True)
def histogram_hits(
    n_hits,
    hit_y,
    hit_x,
    hit_double,
    use,
    slot,
    a,
    b,
    lo,
    inv_width,
    single,
    double,
    n_single,
    n_double,
    with_map,
    map_lo,
    map_scale,
    hit_map,
):  # pragma: no cover - numba
    """Add the hits of the frames with ``use[n]`` to per-slot histograms (in place).

    The corrected position ``y' = y - (a*x + b*x**2)`` goes to bin ``floor((y' - lo) * inv_width)``
    when that is in ``[0, nb)``. ``single``/``double`` are ``(n_slots, nb)`` int64 histograms,
    ``n_single``/``n_double`` ``(n_slots,)`` hit counts (all hits, in range or not).

    With ``with_map`` every hit also goes to ``hit_map[slot, y'bin, xbin]``, the bins
    ``floor((v - map_lo[i]) * map_scale[i])`` of ``(y', x)``; hits off that grid are not mapped.
    """
    ny = hit_map.shape[1]
    nx = hit_map.shape[2]
    nb = single.shape[1]
    for n in range(n_hits.shape[0]):
        if not use[n]:
            continue
        s = slot[n]
        for k in range(n_hits[n]):
            x = hit_x[n, k]
            yc = hit_y[n, k] - (a * x + b * x * x)
            t = (yc - lo) * inv_width
            if with_map:
                ty = (yc - map_lo[0]) * map_scale[0]
                tx = (x - map_lo[1]) * map_scale[1]
                if ty >= 0.0 and ty < ny and tx >= 0.0 and tx < nx:
                    hit_map[s, int(ty), int(tx)] += 1
            if hit_double[n, k]:
                n_double[s] += 1
                if t >= 0.0 and t < nb:
                    double[s, int(t)] += 1
            else:
                n_single[s] += 1
                if t >= 0.0 and t < nb:
                    single[s, int(t)] += 1
