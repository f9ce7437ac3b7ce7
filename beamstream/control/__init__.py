"""Steering a running pipeline: config changes as recorded versions, applied at train boundaries.

* `beamstream.control.patch`: a change (dotted keys or a whole TOML) -> the next config text;
* `beamstream.control.validate`: safety rules, full validation, compatible or new segment;
* `beamstream.control.versions`: the version log and its HDF5 form;
* `beamstream.control.controller`: versions queued by the API, taken by the run at a boundary;
* `beamstream.control.persist`: the applied config saved beside the results (for ``--resume``);
* `beamstream.control.api`, `beamstream.control.client`: the HTTP API and its Python client.

See ``docs/control.md``.
"""
