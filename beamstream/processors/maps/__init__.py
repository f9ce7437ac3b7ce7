"""Per-frame attributes and live scan maps (the LiX scanning-mapping workflow).

Modules: `attributes` (built-in attribute functions, user functions by dotted path), `extract`
(the `AttributeExtractor` accumulator: per-frame attributes from the q-phi products), `_batched`
(the extractor's batched built-ins, its hot path), `grid` (global scan grid, snake order, cell
keys), `placement` (frames to grid cells, or the reason they are not placed), `cellmaps` (the
per-cell sums: adding to them, mean maps, transmission-derived maps), `scanmap` (the `ScanMap`
accumulator: attributes on the scan grid, merged over partial scans). See docs/maps.md.
"""

from .extract import AttributeExtractor
from .grid import ScanGrid
from .scanmap import ScanMap

__all__ = ["AttributeExtractor", "ScanGrid", "ScanMap"]
