"""Per-frame attributes and live scan maps (the LiX scanning-mapping workflow).

Modules: `attributes` (built-in attribute functions, user functions by dotted path), `extract`
(the `AttributeExtractor` accumulator: per-frame attributes from the q-phi products), `grid`
(global scan grid, snake order, cell keys), `scanmap` (the `ScanMap` accumulator: attributes on
the scan grid, merged over partial scans). See docs/maps.md.
"""

from .extract import AttributeExtractor
from .grid import ScanGrid
from .scanmap import ScanMap

__all__ = ["AttributeExtractor", "ScanGrid", "ScanMap"]
