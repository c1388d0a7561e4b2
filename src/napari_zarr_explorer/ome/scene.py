"""The coordinate systems of an OME-NGFF 0.6 hierarchy as one graph, read from a store.

A node's ``scene`` (and ``multiscales``) give the first coordinate systems and transformations;
every image (or label image) that a transformation names by ``path`` is read and its own systems
and transformations are added, so that a point can travel from any array or coordinate system to
any other one connected to it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.ome.model import OmeMetadata, parse_ome
from napari_zarr_explorer.ome.transforms import SystemKey, TransformGraph, join_path

__all__ = ["SceneGraph", "load_graph"]

#: Most groups read while following the paths of a scene.
MAX_GROUPS = 1000


@dataclass
class SceneGraph:
    """The graph of a hierarchy and the OME metadata of every group read (by path)."""

    graph: TransformGraph
    nodes: dict[str, OmeMetadata]
    root: str

    def default_system(self) -> SystemKey | None:
        """Return the system to display the hierarchy in, or None.

        That is the scene's first coordinate system (recommended by the specification), else
        the intrinsic system of the root image.
        """
        ome = self.nodes.get(self.root)
        if ome is None:
            return None
        if ome.scene is not None and ome.scene.coordinate_systems:
            return (self.root, ome.scene.coordinate_systems[0].name)
        if ome.multiscales and ome.multiscales[0].intrinsic:
            return (self.root, ome.multiscales[0].intrinsic)
        return None


def load_graph(store: Any, path: str = "", *, where: str = "") -> SceneGraph:
    """Read the node at *path* and the groups its transformations name; build their graph.

    Parameters
    ----------
    store
        A zarr store (read-only is enough).
    path
        The node (a scene or an image group) inside the store.
    where
        The store's location, for messages.

    Raises
    ------
    ExplorerError
        The node has no OME-NGFF metadata, or its metadata cannot be read.
    """
    from napari_zarr_explorer.store import read_node
    from napari_zarr_explorer.store.locate import node_where

    graph = TransformGraph()
    nodes: dict[str, OmeMetadata] = {}
    root = path.strip("/")
    queue: deque[str] = deque([root])
    seen = {root}
    while queue and len(nodes) < MAX_GROUPS:
        gpath = queue.popleft()
        node = read_node(store, gpath, where=where)
        if node is None:
            if gpath == root:
                raise ExplorerError(
                    f"{node_where(where, gpath)}: no Zarr metadata here.",
                    hint="Give the folder of an OME-Zarr scene or image.",
                )
            graph.problems.append(f"{gpath!r} is named by a transformation but does not exist.")
            continue
        ome = parse_ome(node.attributes, zarr_format=node.zarr_format)
        if ome is None:
            if gpath == root:
                raise ExplorerError(
                    f"{node_where(where, gpath)}: no OME-NGFF metadata in its attributes.",
                    hint="Give the folder of an OME-Zarr 0.6 scene or image.",
                )
            continue
        nodes[gpath] = ome
        refs: list[str | None] = []
        if ome.scene is not None:
            ome.scene.add_to(graph, gpath)
            refs += [r.path for t in ome.scene.transforms for r in (t.input, t.output) if r]
        for ms in ome.multiscales[:1]:
            ms.add_to(graph, gpath)
            refs += [r.path for t in ms.transforms for r in (t.input, t.output) if r]
        for ref in refs:
            if not ref:
                continue
            try:
                target = join_path(gpath, ref)
            except ExplorerError as exc:
                graph.problems.append(exc.message)
                continue
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return SceneGraph(graph=graph, nodes=nodes, root=root)
