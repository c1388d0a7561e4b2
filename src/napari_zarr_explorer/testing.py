"""Store factories for tests, docs, benchmarks and the built-in sample.

Every function writes a small, deterministic Zarr or OME-Zarr store into a local folder and returns
its path. The data is smooth (blobs on gradients), so that images look like images and compress
like real data.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SAMPLE_NAME",
    "blobs",
    "make_sample",
    "sample_path",
    "tensorstore_sharded_spec",
    "write_array",
    "write_bioformats2raw",
    "write_ome_image",
    "write_plate",
]

#: Folder name of the built-in sample in the cache (bump the suffix when its content changes).
SAMPLE_NAME = "sample-v2.ome.zarr"

_PALETTE = ("FF00FF", "00FF00", "00FFFF", "FF0000", "0000FF", "FFFF00", "FFFFFF")
_UNITS = {"space": "micrometer", "time": "second"}
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def blobs(shape: Sequence[int], *, seed: int = 0, n: int = 8, dtype: Any = "uint16") -> np.ndarray:
    """Return smooth test data: Gaussian blobs over a gentle gradient.

    The last (up to) three dimensions are spatial; each index of the leading dimensions (channels,
    time points) gets its own blobs.

    Parameters
    ----------
    shape
        Shape of the array.
    seed
        Random seed (the result is deterministic).
    n
        Number of blobs per leading index.
    dtype
        Output dtype; integers use most of their range, floats are in 0..1.

    Returns
    -------
    numpy.ndarray
    """
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng(seed)
    nsp = min(3, len(shape))
    lead, spatial = shape[: len(shape) - nsp], shape[len(shape) - nsp :]
    out = np.zeros(shape, dtype=np.float32)
    grids = [np.arange(s, dtype=np.float32) for s in spatial]
    for idx in np.ndindex(*lead) if lead else [()]:
        img = out[idx]
        # gradient along the last axis
        img += 0.15 * grids[-1] / max(spatial[-1], 1)
        for _ in range(n):
            centre = [rng.uniform(0, s) for s in spatial]
            sigma = [max(s * rng.uniform(0.04, 0.12), 0.8) for s in spatial]
            amp = rng.uniform(0.4, 0.85)
            profile = None
            for d, (g, c, sg) in enumerate(zip(grids, centre, sigma, strict=True)):
                p = np.exp(-0.5 * ((g - c) / sg) ** 2).astype(np.float32)
                shp = [1] * nsp
                shp[d] = -1
                p = p.reshape(shp)
                profile = p if profile is None else profile * p
            assert profile is not None
            img += amp * profile
    np.clip(out, 0, 1, out=out)
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        hi = min(np.iinfo(dt).max, 4095 if dt.itemsize >= 2 else 255)
        return (out * hi).astype(dt)
    if dt.kind == "b":
        return out > 0.5
    return out.astype(dt)


def _v3_codec(codec: Any) -> Any:
    """Accept numcodecs codec objects for v3 arrays by wrapping them as ``numcodecs.*`` codecs."""
    import numcodecs.abc

    if isinstance(codec, numcodecs.abc.Codec):
        import zarr.codecs.numcodecs as zn

        cfg = codec.get_config()
        cid = cfg.pop("id")
        cls = {
            "zstd": zn.Zstd,
            "gzip": zn.GZip,
            "zlib": zn.Zlib,
            "blosc": zn.Blosc,
            "lz4": zn.LZ4,
            "bz2": zn.BZ2,
            "lzma": zn.LZMA,
            "delta": zn.Delta,
            "fixedscaleoffset": zn.FixedScaleOffset,
            "crc32": zn.CRC32,
            "adler32": zn.Adler32,
            "shuffle": zn.Shuffle,
            "quantize": zn.Quantize,
            "bitround": zn.BitRound,
            "astype": zn.AsType,
            "packbits": zn.PackBits,
        }[cid]
        return cls(**cfg)
    return codec


def _compressors(compressor: Any, zarr_format: int) -> Any:
    if compressor == "default":
        return "auto"
    if compressor is None or compressor == "none":
        return None
    if isinstance(compressor, str):
        import numcodecs

        name, _, level = compressor.partition(":")
        lvl = int(level) if level else None
        if zarr_format == 2:
            table: dict[str, Any] = {
                "zstd": lambda: numcodecs.Zstd(level=lvl or 3),
                "gzip": lambda: numcodecs.GZip(level=lvl or 5),
                "zlib": lambda: numcodecs.Zlib(level=lvl or 5),
                "blosc": lambda: numcodecs.Blosc(cname="zstd", clevel=lvl or 5),
                "lz4": lambda: numcodecs.LZ4(),
                "bz2": lambda: numcodecs.BZ2(level=lvl or 5),
                "lzma": lambda: numcodecs.LZMA(),
            }
            return table[name]()
        from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

        v3: dict[str, Any] = {
            "zstd": lambda: ZstdCodec(level=lvl or 3),
            "gzip": lambda: GzipCodec(level=lvl or 5),
            "blosc": lambda: BloscCodec(cname="zstd", clevel=lvl or 5),
        }
        if name in v3:
            return v3[name]()
        return _v3_codec(_compressors(compressor, 2))
    if zarr_format == 3:
        if isinstance(compressor, list | tuple):
            return [_v3_codec(c) for c in compressor]
        return _v3_codec(compressor)
    return compressor


def write_array(
    path: str | os.PathLike[str],
    data: np.ndarray,
    *,
    zarr_format: int = 3,
    chunks: Sequence[int] | None = None,
    shards: Sequence[int] | None = None,
    compressor: Any = "default",
    filters: Sequence[Any] | None = None,
    fill_value: Any = None,
    dimension_names: Sequence[str] | None = None,
    separator: str | None = None,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> Path:
    """Write *data* as a Zarr array at *path* (the store root, or ``name`` inside it).

    Parameters
    ----------
    path
        Folder of the store (created).
    data
        The values to write.
    zarr_format
        2 or 3.
    chunks, shards
        Chunk (inner chunk when sharded) and shard shapes; default: zarr's choice.
    compressor
        ``"default"`` (zarr's default), None / ``"none"``, a short name (``"zstd:5"``, ``"gzip"``,
        ``"blosc"``, ``"lz4"``, ``"bz2"``, ``"lzma"``, ``"zlib"``), or codec objects (numcodecs
        codecs are wrapped for Zarr v3).
    filters
        Filters (numcodecs codecs for v2; array-to-array codecs for v3).
    fill_value
        The fill value (default: zarr's default for the dtype).
    dimension_names
        Zarr v3 dimension names.
    separator
        Chunk key separator: ``"."`` or ``"/"`` (default: ``"."`` for v2, ``"/"`` for v3).
    name
        Path of the array inside the store (default: the root).
    attributes
        User attributes of the array.

    Returns
    -------
    pathlib.Path
        *path*.
    """
    import zarr

    path = Path(path)
    store = zarr.storage.LocalStore(path)
    data = np.asarray(data)
    kwargs: dict[str, Any] = {}
    if chunks is not None:
        kwargs["chunks"] = tuple(chunks)
    if shards is not None:
        kwargs["shards"] = tuple(shards)
    if fill_value is not None:
        kwargs["fill_value"] = fill_value
    if separator is not None:
        kwargs["chunk_key_encoding"] = {
            "name": "v2" if zarr_format == 2 else "default",
            "separator": separator,
        }
    if filters is not None:
        kwargs["filters"] = list(filters) if zarr_format == 2 else [_v3_codec(f) for f in filters]
    if dimension_names is not None and zarr_format == 3:
        kwargs["dimension_names"] = list(dimension_names)
    arr = zarr.create_array(
        store,
        name=name,
        shape=data.shape,
        dtype=data.dtype,
        compressors=_compressors(compressor, zarr_format),
        zarr_format=zarr_format,  # type: ignore[arg-type]
        attributes=attributes,
        overwrite=True,
        **kwargs,
    )
    arr[...] = data
    return path


#: The inner codecs of :func:`tensorstore_sharded_spec` unless told otherwise.
_TS_INNER_CODECS: tuple[dict[str, Any], ...] = (
    {"name": "bytes", "configuration": {"endian": "little"}},
    {"name": "zstd", "configuration": {"level": 3}},
)


def tensorstore_sharded_spec(
    path: str | os.PathLike[str],
    shape: Sequence[int],
    *,
    dtype: str,
    chunks: Sequence[int],
    shards: Sequence[int],
    codecs: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the tensorstore spec that creates a sharded Zarr v3 array at *path* (replacing it).

    Shards as tensorstore writes them (a CRC32C-checked index at the end), to test and measure
    against data written by another implementation than zarr-python. Open it with
    ``tensorstore.open(spec).result()``; this function does not import tensorstore.

    Parameters
    ----------
    path
        Folder of the array.
    shape, dtype
        The array's shape and Zarr v3 data type name (``"uint16"``).
    chunks, shards
        Inner chunk and shard shapes.
    codecs
        The inner chunks' codecs (default: little-endian ``bytes`` and ``zstd`` level 3).

    Returns
    -------
    dict
        The spec (driver ``zarr3`` on a ``file`` key-value store).
    """
    inner = [dict(c) for c in (_TS_INNER_CODECS if codecs is None else codecs)]
    sharding = {
        "name": "sharding_indexed",
        "configuration": {
            "chunk_shape": list(chunks),
            "codecs": inner,
            "index_codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "crc32c"},
            ],
        },
    }
    grid = {"name": "regular", "configuration": {"chunk_shape": list(shards)}}
    return {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": str(path)},
        "metadata": {
            "shape": list(shape),
            "data_type": dtype,
            "chunk_grid": grid,
            "codecs": [sharding],
        },
        "create": True,
        "delete_existing": True,
    }


def _axes_meta(axes: str, version: str) -> Any:
    if version in ("0.1", "0.2"):
        return None
    if version == "0.3":
        return list(axes)
    out = []
    for a in axes:
        typ = _AXIS_TYPES.get(a, "space")
        entry: dict[str, Any] = {"name": a, "type": typ}
        if typ in _UNITS:
            entry["unit"] = _UNITS[typ]
        out.append(entry)
    return out


def _level_shapes(shape: Sequence[int], axes: str, levels: int) -> list[tuple[int, ...]]:
    out = []
    for lev in range(levels):
        f = 2**lev
        out.append(
            tuple(max(1, -(-s // f)) if a in "yx" else s for s, a in zip(shape, axes, strict=True))
        )
    return out


def _level_data(data: np.ndarray, axes: str, level: int) -> np.ndarray:
    f = 2**level
    sl = tuple(slice(None, None, f) if a in "yx" else slice(None) for a in axes)
    return np.ascontiguousarray(data[sl])


def _multiscales(
    axes: str, version: str, levels: int, voxel: Sequence[float], name: str
) -> dict[str, Any]:
    datasets = []
    for lev in range(levels):
        ds: dict[str, Any] = {"path": str(lev)}
        if version not in ("0.1", "0.2", "0.3"):
            scale = [(v * 2**lev if a in "yx" else v) for a, v in zip(axes, voxel, strict=True)]
            ds["coordinateTransformations"] = [{"type": "scale", "scale": scale}]
        datasets.append(ds)
    ms: dict[str, Any] = {"name": name, "datasets": datasets}
    ax = _axes_meta(axes, version)
    if ax is not None:
        ms["axes"] = ax
    if version not in ("0.5",):
        ms["version"] = version
    if version in ("0.1", "0.2", "0.3", "0.4", "0.5"):
        ms["type"] = "subsample"
    return ms


def _put_ome_attrs(group: Any, version: str, body: dict[str, Any]) -> None:
    if version == "0.5":
        group.attrs.put({"ome": {"version": "0.5", **body}})
    else:
        group.attrs.put(body)


def _default_voxel(axes: str) -> list[float]:
    return [{"z": 2.0, "y": 0.5, "x": 0.5}.get(a, 1.0) for a in axes]


def _write_image(
    root: Any,
    path: str,
    data: np.ndarray,
    *,
    version: str,
    axes: str,
    levels: int,
    chunks: Sequence[int] | None,
    shards: Sequence[int] | None,
    omero: bool = True,
    voxel: Sequence[float] | None = None,
    name: str = "image",
    compressor: Any = "default",
    channels: Sequence[tuple[str, str]] | None = None,
) -> Any:
    zarr_format = 3 if version == "0.5" else 2
    group = root.create_group(path, overwrite=True) if path else root
    voxel = list(voxel) if voxel is not None else _default_voxel(axes)
    for lev in range(levels):
        lvl = _level_data(data, axes, lev)
        kwargs: dict[str, Any] = {}
        if chunks is not None:
            kwargs["chunks"] = tuple(
                min(c, max(s, 1)) for c, s in zip(chunks, lvl.shape, strict=True)
            )
        if shards is not None and zarr_format == 3:
            assert chunks is not None, "shards need chunks"
            kwargs["shards"] = tuple(
                max(c, min(sh, -(-s // c) * c))
                for sh, c, s in zip(shards, kwargs["chunks"], lvl.shape, strict=True)
            )
        if zarr_format == 3:
            kwargs["dimension_names"] = list(axes)
        else:
            kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        arr = group.create_array(
            str(lev),
            shape=lvl.shape,
            dtype=lvl.dtype,
            compressors=_compressors(compressor, zarr_format),
            overwrite=True,
            **kwargs,
        )
        arr[...] = lvl
    body: dict[str, Any] = {"multiscales": [_multiscales(axes, version, levels, voxel, name)]}
    if omero and "c" in axes:
        nc = data.shape[axes.index("c")]
        hi = float(np.iinfo(data.dtype).max) if data.dtype.kind in "ui" else 1.0
        top = float(data.max()) if data.size else hi
        body["omero"] = {
            "name": name,
            "version": version,
            "channels": [
                {
                    "label": channels[i][0] if channels and i < len(channels) else f"Channel {i}",
                    "color": channels[i][1]
                    if channels and i < len(channels)
                    else _PALETTE[i % len(_PALETTE)],
                    "active": True,
                    "window": {"start": 0.0, "end": top, "min": 0.0, "max": hi},
                }
                for i in range(nc)
            ],
            "rdefs": {"model": "color"},
        }
        if version == "0.5":
            del body["omero"]["version"]
    _put_ome_attrs(group, version, body)
    return group


def _open_root(path: Path, version: str) -> Any:
    import zarr

    if path.exists():
        shutil.rmtree(path)
    return zarr.open_group(
        zarr.storage.LocalStore(path), mode="w", zarr_format=3 if version == "0.5" else 2
    )


def write_ome_image(
    path: str | os.PathLike[str],
    *,
    version: str = "0.5",
    shape: Sequence[int] = (3, 16, 128, 128),
    axes: str = "czyx",
    levels: int = 3,
    chunks: Sequence[int] | None = None,
    shards: Sequence[int] | None = None,
    dtype: str = "uint16",
    labels: bool = False,
    seed: int = 0,
    voxel: Sequence[float] | None = None,
    compressor: Any = "default",
    channels: Sequence[tuple[str, str]] | None = None,
) -> Path:
    """Write an OME-Zarr multiscale image (with ``omero`` channels) at *path*.

    Parameters
    ----------
    path
        Folder of the new store (replaced if it exists).
    version
        ``"0.1"`` to ``"0.4"`` write Zarr v2 ``.zattrs``; ``"0.5"`` writes Zarr v3 ``zarr.json``.
    shape, axes
        Level-0 shape and its axis names (one letter per axis among ``tczyx``).
    levels
        Number of resolution levels; each halves ``y`` and ``x``.
    chunks, shards
        Chunk and (Zarr v3 only) shard shapes of level 0, clipped for smaller levels.
    dtype
        Data type.
    labels
        Also write ``labels/cells`` (an image-label with colours) for the spatial axes.
    seed
        Random seed of the blobs.
    voxel
        Physical size per axis (default: z 2.0, y/x 0.5 micrometer, others 1).
    compressor
        As for :func:`write_array`.
    channels
        ``(label, RRGGBB colour)`` per channel (default: ``Channel i`` in a colour cycle).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if len(axes) != len(shape):
        raise ValueError(f"axes {axes!r} do not match shape {tuple(shape)}")
    root = _open_root(path, version)
    data = blobs(shape, seed=seed, dtype=dtype)
    _write_image(
        root,
        "",
        data,
        version=version,
        axes=axes,
        levels=levels,
        chunks=chunks,
        shards=shards,
        voxel=voxel,
        name=path.name.split(".")[0] or "image",
        compressor=compressor,
        channels=channels,
    )
    if labels:
        _write_labels(
            root,
            data,
            axes=axes,
            version=version,
            levels=levels,
            chunks=chunks,
            shards=shards,
            voxel=voxel,
        )
    return path


def _write_labels(
    root: Any,
    data: np.ndarray,
    *,
    axes: str,
    version: str,
    levels: int,
    chunks: Sequence[int] | None,
    shards: Sequence[int] | None,
    voxel: Sequence[float] | None,
    labels: np.ndarray | None = None,
    rgba: Sequence[Sequence[int]] | None = None,
) -> None:
    keep = [i for i, a in enumerate(axes) if a != "c"]
    lab_axes = "".join(axes[i] for i in keep)
    if labels is not None:
        lab = labels
    else:
        ref = data
        if "c" in axes:
            ref = np.take(data, 0, axis=axes.index("c"))
        thr = np.percentile(ref, 90) if ref.size else 0
        mask = ref > thr
        # split the mask into a few labels along the last axis for visual variety
        width = max(ref.shape[-1] // 4, 1)
        band = (np.arange(ref.shape[-1]) // width + 1).astype(np.uint32)
        lab = np.where(mask, band, 0).astype(np.uint32)
    group = root.create_group("labels", overwrite=True)
    _put_ome_attrs(group, version, {"labels": ["cells"]})
    lchunks = [chunks[i] for i in keep] if chunks is not None else None
    lshards = [shards[i] for i in keep] if shards is not None else None
    lvox = [voxel[i] for i in keep] if voxel is not None else None
    cells = _write_image(
        group,
        "cells",
        lab,
        version=version,
        axes=lab_axes,
        levels=levels,
        chunks=lchunks,
        shards=lshards,
        omero=False,
        voxel=lvox,
        name="cells",
    )
    palette = rgba or (
        [255, 64, 64, 255],
        [64, 255, 64, 255],
        [64, 128, 255, 255],
        [255, 200, 0, 255],
    )
    colors = [{"label-value": v, "rgba": list(c)} for v, c in enumerate(palette, start=1)]
    attrs = dict(cells.attrs.asdict())
    il = {"colors": colors, "source": {"image": "../../"}}
    if version == "0.5":
        attrs["ome"]["image-label"] = il
    else:
        il["version"] = version
        attrs["image-label"] = il
    cells.attrs.put(attrs)


def write_plate(
    path: str | os.PathLike[str],
    *,
    version: str = "0.5",
    rows: int = 2,
    cols: int = 3,
    fields: int = 2,
    shape: Sequence[int] = (2, 64, 64),
    axes: str = "cyx",
    levels: int = 2,
    missing_wells: Sequence[str] = (),
    seed: int = 0,
) -> Path:
    """Write an OME-Zarr HCS plate at *path*.

    Parameters
    ----------
    path
        Folder of the new store (replaced if it exists).
    version
        OME-NGFF version (``"0.4"``: Zarr v2, ``"0.5"``: Zarr v3).
    rows, cols
        Plate size; rows are named ``A, B, ...``, columns ``1, 2, ...``.
    fields
        Fields of view per well.
    shape, axes
        Shape and axes of each field image.
    levels
        Resolution levels per field.
    missing_wells
        Well paths (``"A/2"``) left out of the plate.
    seed
        Random seed.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    root = _open_root(path, version)
    row_names = [chr(ord("A") + i) for i in range(rows)]
    col_names = [str(j + 1) for j in range(cols)]
    wells = []
    k = 0
    for ri, r in enumerate(row_names):
        for ci, c in enumerate(col_names):
            wpath = f"{r}/{c}"
            if wpath in missing_wells:
                continue
            wells.append({"path": wpath, "rowIndex": ri, "columnIndex": ci})
            rg = root.require_group(r)
            wg = rg.create_group(c, overwrite=True)
            images = []
            for f in range(fields):
                data = blobs(shape, seed=seed + k, n=4)
                k += 1
                _write_image(
                    wg,
                    str(f),
                    data,
                    version=version,
                    axes=axes,
                    levels=levels,
                    chunks=None,
                    shards=None,
                    name=f"{r}{c} field {f}",
                )
                images.append({"path": str(f), "acquisition": 0})
            wbody: dict[str, Any] = {"well": {"images": images}}
            if version != "0.5":
                wbody["well"]["version"] = version
            _put_ome_attrs(wg, version, wbody)
    for r in row_names:
        rg = root.require_group(r)
    plate: dict[str, Any] = {
        "name": path.name,
        "rows": [{"name": r} for r in row_names],
        "columns": [{"name": c} for c in col_names],
        "wells": wells,
        "field_count": fields,
        "acquisitions": [{"id": 0, "name": "acquisition 0", "maximumfieldcount": fields}],
    }
    if version != "0.5":
        plate["version"] = version
    _put_ome_attrs(root, version, {"plate": plate})
    return path


def write_bioformats2raw(
    path: str | os.PathLike[str], *, series: int = 2, version: str = "0.4"
) -> Path:
    """Write a bioformats2raw-layout container with *series* images at *path*.

    Parameters
    ----------
    path
        Folder of the new store (replaced if it exists).
    series
        Number of series (images ``0``, ``1``, ...), each a small 3-channel image.
    version
        OME-NGFF version of the images.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    root = _open_root(path, version)
    for i in range(series):
        shape = (3, 64 + 32 * i, 96)
        _write_image(
            root,
            str(i),
            blobs(shape, seed=i),
            version=version,
            axes="cyx",
            levels=2,
            chunks=None,
            shards=None,
            name=f"series {i}",
        )
    _put_ome_attrs(root, version, {"bioformats2raw.layout": 3})
    ome = root.create_group("OME", overwrite=True)
    _put_ome_attrs(ome, version, {"series": [str(i) for i in range(series)]})
    (path / "OME" / "METADATA.ome.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        + "".join(f'<Image ID="Image:{i}" Name="series {i}"/>' for i in range(series))
        + "</OME>\n"
    )
    return path


def _add_blob(
    vol: np.ndarray, centre: Sequence[float], sigma: Sequence[float], amp: float
) -> tuple[slice, ...]:
    """Add a Gaussian blob into *vol* within +-3 sigma of *centre*; return the box used."""
    box = []
    profiles = []
    for d, (c, sg, n) in enumerate(zip(centre, sigma, vol.shape, strict=True)):
        lo, hi = max(0, int(c - 3 * sg)), min(n, int(c + 3 * sg) + 1)
        box.append(slice(lo, hi))
        g = np.exp(-0.5 * ((np.arange(lo, hi, dtype=np.float32) - c) / sg) ** 2)
        shp = [1] * vol.ndim
        shp[d] = -1
        profiles.append(g.reshape(shp))
    sel = tuple(box)
    vol[sel] += amp * profiles[0] * profiles[1] * profiles[2]
    return sel


def _sample_data(
    shape: tuple[int, int, int], seed: int
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Cells in a 3-D volume: nuclei, membranes, vesicles (uint16) and nucleus labels."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    nuclei = np.zeros(shape, np.float32)
    membrane = np.zeros(shape, np.float32)
    vesicles = np.zeros(shape, np.float32)
    labels = np.zeros(shape, np.uint32)
    colours: list[list[int]] = []
    n_cells = 36
    for i in range(n_cells):
        c = (rng.uniform(4, nz - 4), rng.uniform(24, ny - 24), rng.uniform(24, nx - 24))
        r = rng.uniform(10, 18)
        sel = _add_blob(nuclei, c, (r / 4, r / 2.2, r / 2.2), rng.uniform(0.5, 0.9))
        # the nucleus label: where this nucleus is bright
        zz, yy, xx = np.ogrid[sel[0], sel[1], sel[2]]
        inside = ((zz - c[0]) / (r / 3.2)) ** 2 + ((yy - c[1]) / r) ** 2 + (
            (xx - c[2]) / r
        ) ** 2 <= 1.0
        view = labels[sel]
        view[inside] = i + 1
        # the membrane: a shell around the nucleus (difference of two blobs)
        _add_blob(membrane, c, (r / 2.5, r * 1.0, r * 1.0), 0.9)
        _add_blob(membrane, c, (r / 2.5, r * 0.75, r * 0.75), -1.0)
        for _ in range(6):
            v = (c[0] + rng.normal(0, 2), c[1] + rng.normal(0, r), c[2] + rng.normal(0, r))
            _add_blob(vesicles, v, (1.0, 1.6, 1.6), rng.uniform(0.4, 1.0))
        hue = rng.uniform(0, 1)
        colours.append(
            [int(255 * (0.5 + 0.5 * np.cos(2 * np.pi * (hue + k / 3)))) for k in range(3)] + [255]
        )
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    background = 0.04 + 0.04 * (xx / nx) + 0.02 * (yy / ny)
    out = np.stack([nuclei, np.clip(membrane, 0, None), vesicles])
    out += background[None, None]
    noise = np.asarray(rng.normal(0, 0.01, size=out.shape), dtype=np.float32)
    scaled = np.clip(out + noise, 0, 1) * np.float32(4000)
    return np.asarray(scaled, dtype=np.uint16), labels, colours


def make_sample(path: str | os.PathLike[str]) -> Path:
    """Write the built-in sample at *path*.

    A 3-channel 3-D OME-Zarr 0.5 image (3 x 32 x 512 x 512, uint16: nuclei, membranes and
    vesicles of a few dozen cells) with 3 sharded resolution levels, and a ``labels/cells``
    label image of the nuclei with one colour per cell.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    data, labels, colours = _sample_data((32, 512, 512), seed=1)
    root = _open_root(path, "0.5")
    voxel = (1.0, 2.0, 0.5, 0.5)
    chunks, shards = (1, 8, 128, 128), (1, 32, 512, 512)
    _write_image(
        root,
        "",
        data,
        version="0.5",
        axes="czyx",
        levels=3,
        chunks=chunks,
        shards=shards,
        voxel=voxel,
        name="cells",
        channels=(("nuclei", "0000FF"), ("membrane", "00FF00"), ("vesicles", "FF00FF")),
    )
    _write_labels(
        root,
        data,
        axes="czyx",
        version="0.5",
        levels=3,
        chunks=chunks,
        shards=shards,
        voxel=voxel,
        labels=labels,
        rgba=colours,
    )
    return path


def _cache_dir() -> Path:
    env = os.environ.get("NAPARI_ZARR_EXPLORER_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "napari-zarr-explorer"


def sample_path() -> Path:
    """Return the path of the built-in sample, generating it on first use.

    The sample lives in the user cache folder (``$NAPARI_ZARR_EXPLORER_CACHE``, else
    ``$XDG_CACHE_HOME/napari-zarr-explorer`` or ``~/.cache/napari-zarr-explorer``). It is never
    downloaded. Generation writes to a temporary folder and renames it into place, so concurrent
    first uses are safe.

    Returns
    -------
    pathlib.Path
    """
    cache = _cache_dir()
    target = cache / SAMPLE_NAME
    marker = target / ".complete"
    if marker.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sample-", dir=cache))
    try:
        made = make_sample(tmp / SAMPLE_NAME)
        (made / ".complete").write_text(json.dumps({"generator": "napari-zarr-explorer"}))
        if target.exists() and not marker.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(made, target)
        except OSError:
            if not marker.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
