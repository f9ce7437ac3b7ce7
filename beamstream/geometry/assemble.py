"""`Assembler`: reduced module images placed by extra-geom into a reused display buffer."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Assembler"]


class Assembler:
    """Assemble ``(module, ss, fs)`` images (or ``(..., module, ss, fs)`` stacks) for display.

    extra-geom's ``position_modules`` writes into an output buffer that is allocated once per
    leading shape and reused; it never writes the gaps between modules, which stay NaN. A new
    geometry gets new buffers (stale pixels would otherwise remain in the new gaps).

    Parameters
    ----------
    geometry
        An extra-geom geometry (see `beamstream.geometry.build_geometry`).
    """

    def __init__(self, geometry: Any):
        self.geometry = geometry
        self._out: dict[tuple[int, ...], np.ndarray] = {}
        self.centre: tuple[int, int] | None = None

    @property
    def module_shape(self) -> tuple[int, int, int]:
        """``(n_modules, ss, fs)`` that the geometry expects."""
        g = self.geometry
        return (g.n_modules, *g.expected_data_shape[-2:])

    def assemble(self, modules: np.ndarray) -> np.ndarray:
        """The assembled image(s) of ``modules`` (float32, NaN in gaps); a reused buffer.

        Raises
        ------
        ValueError
            When the trailing axes are not the geometry's ``(module, ss, fs)``.
        """
        data = np.asarray(modules)
        if data.shape[-3:] != self.module_shape:
            raise ValueError(
                f"assemble: found module data of shape {data.shape}, expected "
                f"(..., {', '.join(map(str, self.module_shape))})"
            )
        lead = data.shape[:-3]
        out = self._out.get(lead)
        if out is None:
            out = self.geometry.output_array_for_position_fast(extra_shape=lead)
            self._out[lead] = out
        img, centre = self.geometry.position_modules(data, out=out)
        self.centre = (int(centre[0]), int(centre[1]))
        return img

    def set_geometry(self, geometry: Any) -> None:
        """Use another geometry (the buffers are reallocated)."""
        self.geometry = geometry
        self._out.clear()
