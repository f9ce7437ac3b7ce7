"""Detector geometries of multi-module detectors, through extra-geom.

`build_geometry` turns a config table (``detector`` plus a geometry file or quadrant/module
positions) into an extra-geom geometry; `pixel_positions` gives the unassembled pixel centres
that q-phi integrates over; `Assembler` places reduced module images into a reused display
buffer with extra-geom's ``position_modules``.
"""

from beamstream.geometry.assemble import Assembler
from beamstream.geometry.euxfel import DETECTORS, build_geometry, pixel_positions

__all__ = ["Assembler", "DETECTORS", "build_geometry", "pixel_positions"]
