"""What NeXus viewers and SAS tools read in a results file, besides the results themselves.

* `write_default_plot`: ``/entry/plot``, the pipeline's science result (see
  `beamstream.processors.presentation.default_plot`) with size-1 dims squeezed, errors as
  ``data_errors``, a title, units and long names, so that silx, h5web or nexpy open the file on
  the intended curve or image;
* `write_instrument`: ``/entry/instrument`` (``NXinstrument`` with ``NXdetector`` and
  ``NXsource``), ``/entry/beam`` (``NXbeam``) and ``/entry/sample`` (``NXsample``) from the config:
  detector source and frame shape, distance, pixel sizes, beam centre and the pyFAI geometry,
  wavelength or photon energy, the sample name and scan motor;
* `write_cansas`: every I(q) (an ``I_q`` result) also as ``NXcanSAS`` entries ``/sasentry...``
  (one per scan bin and slot) in a file of their own, ``<stem>.cansas.h5`` next to the results
  file (SAS readers such as SasView's ``sasdata`` expect only ``SASentry`` groups at the top).
"""

from __future__ import annotations

import functools
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from beamstream.formats.h5layout import h5name, write_nxdata
from beamstream.processors.base import Result
from beamstream.processors.presentation import default_plot, errors_of

__all__ = [
    "write_default_plot",
    "write_instrument",
    "write_cansas",
    "cansas_path_for",
    "has_iq",
    "geometry_of",
    "H_C",
]

log = logging.getLogger(__name__)

#: h * c in eV * m (photon energy <-> wavelength)
H_C = 1.239841984e-6


def write_default_plot(
    entry: h5py.Group, results: Mapping[str, Mapping[str, Result]]
) -> str | None:
    """Write ``entry/plot`` (squeezed science result) and point ``entry@default`` at it.

    Returns the ``processor/result`` shown, or None when there is nothing to show.
    """
    chosen = default_plot(results)
    if chosen is None:
        return None
    proc, name = chosen
    r = results[proc][name]
    data = np.asarray(r.data)
    keep = [i for i, n in enumerate(data.shape) if n != 1] or list(range(data.ndim))[-1:]
    dims = tuple(r.dims[i] for i in keep)
    squeezed = data.reshape([data.shape[i] for i in keep]) if data.ndim else data
    errors = errors_of(r, results[proc])
    if errors is not None:
        errors = errors.reshape(squeezed.shape)
    g = entry.create_group("plot", track_order=True)
    source = f"results/{h5name(proc)}/" + "/".join(h5name(p) for p in name.split("/") if p)
    g.attrs["source"] = source
    stored = entry.get(f"{source}/data")
    if len(keep) == data.ndim and isinstance(stored, h5py.Dataset):
        squeezed = stored  # nothing to squeeze: link the stored values (large images: no copy)
    fixed = {r.dims[i]: _label(r, r.dims[i]) for i in range(data.ndim) if i not in keep}
    title = f"{name} ({proc})" + "".join(f", {d} = {v}" for d, v in fixed.items())
    write_nxdata(g, r, squeezed, dims, errors=errors, title=title)
    entry.attrs["default"] = "plot"
    return f"{proc}/{name}"


def _label(r: Result, dim: str) -> str:
    c = r.coords.get(dim)
    if c is None or len(c) == 0:
        return "0"
    v = c[0]
    unit = r.coord_units.get(dim, "")
    return f"{v:g} {unit}".strip() if isinstance(v, float | np.floating) else str(v)


@functools.lru_cache(maxsize=8)
def _toml(config_text: str) -> dict[str, Any]:
    """The parsed config (cached: every snapshot of a run writes the same text; read only)."""
    return tomllib.loads(config_text) if config_text else {}


def geometry_of(config_text: str) -> dict[str, Any]:
    """The detector geometry (pyFAI convention: metres, radians) a config's processors use.

    From the first processor with a ``geometry`` table (or ``poni`` file); empty without one.
    """
    raw = _toml(config_text)
    for p in raw.get("processors", []):
        geo = p.get("geometry") if isinstance(p, Mapping) else None
        if not isinstance(geo, Mapping):
            continue
        if "poni" in geo:
            from beamstream.processors.qphi.poni import PoniError, read_poni

            try:
                return {**read_poni(geo["poni"]), "poni_file": str(geo["poni"])}
            except (OSError, PoniError) as e:
                log.info("geometry file %s not read: %s", geo["poni"], e)
                return {"poni_file": str(geo["poni"])}
        return dict(geo)
    return {}


def _field(group: h5py.Group, name: str, value: Any, units: str = "", **attrs: Any) -> None:
    ds = group.create_dataset(name, data=value)
    if units:
        ds.attrs["units"] = units
    for k, v in attrs.items():
        ds.attrs[k] = v


def _group(parent: h5py.Group, name: str, nx_class: str) -> h5py.Group:
    g = parent.create_group(name, track_order=True)
    g.attrs["NX_class"] = nx_class
    return g


def _photon_energy(raw: Mapping[str, Any]) -> float | None:
    for p in raw.get("processors", []):
        if isinstance(p, Mapping) and isinstance(p.get("photon_energy"), int | float):
            return float(p["photon_energy"])
    return None


def write_instrument(entry: h5py.Group, config_text: str) -> None:
    """``instrument`` (NXinstrument/NXdetector/NXsource), ``beam`` (NXbeam), ``sample``
    (NXsample) from what the config says about the detector, geometry, beam and sample."""
    raw = _toml(config_text)
    src = raw.get("source", {})
    geo = geometry_of(config_text)
    inst = _group(entry, "instrument", "NXinstrument")
    _field(inst, "name", "beamstream pipeline")
    source = _group(inst, "source", "NXsource")
    _field(source, "probe", "x-ray")
    det = _group(inst, "detector", "NXdetector")
    _field(det, "description", f"{src.get('detector', '')} {src.get('key', '')}".strip())
    if src.get("frame_shape"):
        _field(det, "frame_shape", np.asarray(src["frame_shape"], np.int64))
    if src.get("layout"):
        _field(det, "layout", ",".join(map(str, src["layout"])))
    if "dist" in geo:
        _field(det, "distance", float(geo["dist"]), "m")
    for ax, key in (("x", "pixel2"), ("y", "pixel1")):
        if key in geo:
            _field(det, f"{ax}_pixel_size", float(geo[key]), "m")
    if "poni2" in geo and "pixel2" in geo:  # the point of normal incidence, in pixels
        _field(det, "beam_center_x", float(geo["poni2"]) / float(geo["pixel2"]), "pixel")
        _field(det, "beam_center_y", float(geo["poni1"]) / float(geo["pixel1"]), "pixel")
    if geo:
        pyfai = _group(det, "geometry_pyfai", "NXcollection")
        for k, v in geo.items():
            if isinstance(v, int | float):
                unit = "rad" if k.startswith("rot") else "m"
                _field(pyfai, k, float(v), unit)
            elif isinstance(v, str):
                _field(pyfai, k, v)
    beam = _group(entry, "beam", "NXbeam")
    wavelength = geo.get("wavelength")
    energy = _photon_energy(raw)
    if wavelength:
        _field(beam, "incident_wavelength", float(wavelength) * 1e10, "angstrom")
        _field(beam, "incident_energy", H_C / float(wavelength), "eV")
    elif energy:
        _field(beam, "incident_energy", energy, "eV")
        _field(beam, "incident_wavelength", H_C / energy * 1e10, "angstrom")
    sample = _group(entry, "sample", "NXsample")
    names = [p.get("sample") for p in raw.get("processors", []) if isinstance(p, Mapping)]
    _field(sample, "name", next((str(n) for n in names if n), "unnamed"))
    scan = raw.get("scan")
    if isinstance(scan, Mapping) and scan.get("source"):
        pos = _group(sample, "scan_motor", "NXpositioner")
        _field(pos, "name", f"{scan['source']}/{scan.get('key', '')}")
        if scan.get("units"):
            _field(pos, "units", str(scan["units"]))


def cansas_path_for(path: str | os.PathLike[str]) -> Path:
    """``run.h5`` -> ``run.cansas.h5``."""
    p = Path(path)
    stem = p.name[: -len(p.suffix)] if p.suffix in (".h5", ".hdf5", ".nxs") else p.name
    return p.with_name(f"{stem}.cansas.h5")


def has_iq(results: Mapping[str, Mapping[str, Result]]) -> bool:
    """Whether any processor has an ``I_q`` result over ``q`` (written as NXcanSAS)."""
    return any(
        "I_q" in named and named["I_q"].dims[-1:] == ("q",) and "q" in named["I_q"].coords
        for named in results.values()
    )


def write_cansas(
    f: h5py.File,
    results: Mapping[str, Mapping[str, Result]],
    config_text: str,
    title: str,
) -> list[str]:
    """Every ``I_q`` result as NXcanSAS entries (one per scan bin and slot) at the top of the
    (new, otherwise empty) file ``f``; their names."""
    f.attrs.update(NX_class="NXroot", creator="beamstream", default="sasentry")
    geo = geometry_of(config_text)
    written: list[str] = []
    for proc, named in results.items():
        if not has_iq({proc: named}):
            continue
        r = named["I_q"]
        data = np.asarray(r.data, dtype=np.float64)
        errors = errors_of(r, named)
        lead = data.shape[:-1]
        for idx in np.ndindex(*lead):
            if not np.isfinite(data[idx]).any():  # a bin or slot without data: no entry
                continue
            label = ", ".join(f"{d} = {_value(r, d, i)}" for d, i in zip(r.dims, idx, strict=False))
            name = "sasentry" if not written else f"sasentry{len(written) + 1:02d}"
            _sas_entry(
                f.create_group(name, track_order=True),
                q=np.asarray(r.coords["q"], np.float64),
                i=data[idx],
                di=None if errors is None else errors[idx],
                q_units=r.coord_units.get("q", "1/nm"),
                title=f"{title}: {proc} I(q)" + (f" ({label})" if label else ""),
                run=f"{proc}/I_q[{','.join(map(str, idx))}]",
                geo=geo,
            )
            written.append(name)
    return written


def _value(r: Result, dim: str, i: int) -> str:
    c = r.coords.get(dim)
    return str(c[i]) if c is not None else str(i)


def _sas_entry(
    e: h5py.Group,
    *,
    q: np.ndarray,
    i: np.ndarray,
    di: np.ndarray | None,
    q_units: str,
    title: str,
    run: str,
    geo: Mapping[str, Any],
) -> None:
    e.attrs.update(NX_class="NXentry", canSAS_class="SASentry", version="1.1", default="sasdata")
    _field(e, "definition", "NXcanSAS")
    _field(e, "title", title)
    _field(e, "run", run)
    ok = np.isfinite(i) & np.isfinite(q)  # empty q bins are not data points
    d = e.create_group("sasdata", track_order=True)
    d.attrs.update(NX_class="NXdata", canSAS_class="SASdata", signal="I", I_axes="Q")
    d.attrs["Q_indices"] = np.array([0], np.int32)
    _field(d, "Q", q[ok], q_units)
    if di is not None:
        _field(d, "I", i[ok], "arbitrary", uncertainties="Idev")
        _field(d, "Idev", np.asarray(di, np.float64)[ok], "arbitrary")
    else:
        _field(d, "I", i[ok], "arbitrary")
    inst = e.create_group("sasinstrument", track_order=True)
    inst.attrs.update(NX_class="NXinstrument", canSAS_class="SASinstrument")
    src = inst.create_group("sassource", track_order=True)
    src.attrs.update(NX_class="NXsource", canSAS_class="SASsource")
    _field(src, "radiation", "x-ray")
    if geo.get("wavelength"):
        _field(src, "incident_wavelength", float(geo["wavelength"]) * 1e10, "A")
    if geo.get("dist"):
        det = inst.create_group("sasdetector", track_order=True)
        det.attrs.update(NX_class="NXdetector", canSAS_class="SASdetector")
        _field(det, "name", "detector")
        _field(det, "SDD", float(geo["dist"]), "m")
