"""Which metadata documents to read ahead when a group's metadata arrives (no zarr import).

When an OME group document arrives, the metadata of the children it names (multiscales levels,
labels, the first well of a plate, the images of a well) is requested at once, concurrently,
instead of one round trip after another as a reader walks down. Only relative paths inside the
store are followed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["READ_AHEAD_MAX_KEYS", "children_metadata_keys"]

#: Most documents read ahead for one group document.
READ_AHEAD_MAX_KEYS = 64


def children_metadata_keys(key: str, data: bytes, zarr_format: int | None) -> list[str]:
    """Metadata keys of the children that an OME group document names (store-relative).

    Only relative paths inside the store are followed (checked with ``safe_join``).
    """
    import json

    from napari_zarr_explorer.errors import PathEscapeError
    from napari_zarr_explorer.store.keys import safe_join

    try:
        doc = json.loads(data)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    if key.rpartition("/")[2] == "zarr.json":
        if doc.get("node_type") != "group":
            return []
        attrs = doc.get("attributes")
    else:
        attrs = doc
    if not isinstance(attrs, dict):
        return []
    nested = attrs.get("ome")
    ome: dict[str, Any] = nested if isinstance(nested, dict) else attrs
    arrays: list[Any] = []
    groups: list[Any] = []
    multiscales = ome.get("multiscales")
    if isinstance(multiscales, list):
        for ms in multiscales[:4]:
            datasets = ms.get("datasets") if isinstance(ms, dict) else None
            if isinstance(datasets, list):
                arrays.extend(d.get("path") for d in datasets if isinstance(d, dict))
        if multiscales and "image-label" not in ome:
            groups.append("labels")
    labels = ome.get("labels")
    if isinstance(labels, list):
        groups.extend(labels)
    for section, field in (("plate", "wells"), ("well", "images")):
        part = ome.get(section)
        items = part.get(field) if isinstance(part, dict) else None
        if isinstance(items, list):
            # a plate is read from its first well's layout: the other wells' metadata is read
            # only if a well proves different (reading ahead would cost a request per well)
            items = items[:1] if section == "plate" else items
            groups.extend(i.get("path") for i in items if isinstance(i, dict))
    base = key.rpartition("/")[0]
    out: list[str] = []
    for rel, is_array in [(r, True) for r in arrays] + [(r, False) for r in groups]:
        try:
            child = safe_join(base, rel)
        except PathEscapeError:
            continue
        if not child or child == base:
            continue
        if zarr_format == 3:
            out.append(f"{child}/zarr.json")
        elif is_array:
            out.extend((f"{child}/.zarray", f"{child}/.zattrs"))
        else:
            out.extend((f"{child}/.zarray", f"{child}/.zgroup", f"{child}/.zattrs"))
        if len(out) >= READ_AHEAD_MAX_KEYS:
            break
    return list(dict.fromkeys(out))[:READ_AHEAD_MAX_KEYS]
