"""The processor registry: entry-point group ``beamstream.processors`` (see `beamstream.plugins`).

In config, ``type`` is a registered name (``scan_binner``) or a dotted path
``package.module:Class``; a module beside the config file is importable (see
`beamstream.processors.pipeline.Pipeline`).
"""

from __future__ import annotations

from beamstream.plugins import Registry, RegistryError
from beamstream.processors.base import Processor

__all__ = ["PROCESSORS", "GROUP", "RegistryError", "available", "resolve", "require_registered"]

PROCESSORS: Registry[Processor] = Registry("beamstream.processors", Processor, "processor")
GROUP = PROCESSORS.group
available = PROCESSORS.available
resolve = PROCESSORS.resolve
require_registered = PROCESSORS.require_registered
