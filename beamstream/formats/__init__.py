"""The HDF5 file formats, shared by the sinks that write them and the readers that read them.

* `beamstream.formats.results_writer` / `beamstream.formats.results`: results files
  (``beamstream-results/1``: NeXus-style results, accumulator states, config, provenance),
  written by the ``hdf5`` sink, read by `open_results`, resume, merge and report;
* `beamstream.formats.nexus`: what viewers read besides the results (``/entry/plot``, instrument,
  beam and sample groups) and the NXcanSAS file of I(q);
* `beamstream.formats.records`: per-train records (ragged columns, SWMR), read back over a run's
  records files by `beamstream.formats.records_read`;
* `beamstream.formats.overlap`: train ids shared by results files (refused by merge);
* `beamstream.formats.raw`: raw recordings (``beamstream-raw/1``), written by the ``raw``
  recorder, read by `beamstream.replay.raw.RawReader`;
* `beamstream.formats.h5layout` and `beamstream.formats.appendfile`: the building blocks (trees
  of arrays, NXdata groups, atomic replacement, extendible SWMR datasets).
"""
