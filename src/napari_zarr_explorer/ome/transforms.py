"""OME-NGFF 0.6 (RFC-5) coordinate transformations: parsing, composition, inverses and points.

A transformation maps *points* of its input coordinate system to points of its output coordinate
system ("forward"). Every type of the specification is parsed: ``identity``, ``mapAxis``,
``projectAxis``, ``translation``, ``scale``, ``affine``, ``rotation``, ``sequence``,
``byDimension``, ``bijection``, ``displacements`` and ``coordinates``. All but the last two apply
to points and, where the specification defines a closed-form inverse, invert. ``displacements``
and ``coordinates`` (and parameters stored in a Zarr array, ``path``) are kept and shown, and
raise :class:`UnsupportedTransformError` naming the field when applied.

:class:`TransformGraph` holds coordinate systems and the transformations between them (an image's
``multiscales``, a ``scene``) and finds the transformation between any two connected systems,
inverting edges where needed.

Points are arrays of shape ``(n, ndim)``, axes in the order of the coordinate system.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from typing_extensions import override

from napari_zarr_explorer.errors import ExplorerError

__all__ = [
    "Affine",
    "Bijection",
    "ByDimension",
    "ByDimensionPart",
    "CoordinateSystemRef",
    "Coordinates",
    "Displacements",
    "FieldTransform",
    "Identity",
    "MapAxis",
    "NotInvertibleError",
    "ProjectAxis",
    "Rotation",
    "Scale",
    "Sequence_",
    "Transform",
    "TransformError",
    "TransformGraph",
    "Translation",
    "UnknownTransform",
    "UnsupportedTransformError",
    "as_scale_translation",
    "layer_placement",
    "parse_transform",
    "transform_points",
]

Points = NDArray[np.float64]

#: Deepest nesting of sequence/byDimension/bijection parsed (hostile metadata cannot recurse).
MAX_DEPTH = 32
#: Most axes a transformation may have (OME-NGFF images have at most 5; matrices are inverted).
MAX_AXES = 64


class TransformError(ExplorerError, ValueError):
    """A coordinate transformation is malformed, or no transformation links two systems."""


class UnsupportedTransformError(TransformError):
    """A transformation is understood but cannot be applied here.

    Vector fields, parameters stored in arrays and unknown types are shown, not applied.
    """


class NotInvertibleError(TransformError):
    """The inverse of a transformation is needed but has no closed form."""


@dataclass(frozen=True, slots=True)
class CoordinateSystemRef:
    """The ``input`` or ``output`` of a transformation.

    A coordinate system ``name`` and/or the ``path`` of the group (or, for a dataset's
    transformation, the array) that defines it.
    """

    name: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        if self.path and self.name:
            return f"{self.path}#{self.name}"
        return self.name or self.path or "?"

    def to_json(self) -> dict[str, str]:
        """Return the 0.6 JSON object form."""
        out = {}
        if self.name is not None:
            out["name"] = self.name
        if self.path is not None:
            out["path"] = self.path
        return out


def _points(points: Any, ndim: int | None, what: str) -> Points:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise TransformError(f"{what}: points must be a list of coordinate lists.")
    if ndim is not None and arr.shape[1] != ndim:
        raise TransformError(
            f"{what}: points have {arr.shape[1]} coordinates, the transformation expects {ndim}."
        )
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class Transform:
    """Base of every transformation: ``type``, optional ``name``, ``input`` and ``output``."""

    type: ClassVar[str] = ""
    name: str | None = None
    input: CoordinateSystemRef | None = None
    output: CoordinateSystemRef | None = None

    # --- dimensions ---------------------------------------------------------------------
    @property
    def ndim_in(self) -> int | None:
        """Input dimensionality when the parameters fix it, else None."""
        return None

    def ndim_out(self, ndim_in: int) -> int:
        """Output dimensionality for *ndim_in* input dimensions."""
        return ndim_in

    # --- use ----------------------------------------------------------------------------
    def apply(self, points: Any) -> Points:
        """Map points ``(n, ndim_in)`` of the input system to the output system."""
        raise NotImplementedError  # pragma: no cover

    def inverse(self) -> Transform:
        """Return the inverse transformation (input and output swapped).

        Raises
        ------
        NotInvertibleError
            The type has no closed-form inverse (or a singular matrix).
        """
        raise NotInvertibleError(f"a {self.type!r} transformation has no closed-form inverse.")

    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        """Return the homogeneous matrix ``(ndim_out + 1, ndim_in + 1)``, or None.

        None when the transformation is not affine or its parameters are not inline.
        """
        return None

    def params(self) -> dict[str, Any]:
        """Return the type-specific JSON fields."""
        return {}

    def to_json(self) -> dict[str, Any]:
        """Return the transformation as OME-NGFF 0.6 JSON."""
        out: dict[str, Any] = {"type": self.type}
        if self.name is not None:
            out["name"] = self.name
        out.update(self.params())
        if self.input is not None:
            out["input"] = self.input.to_json()
        if self.output is not None:
            out["output"] = self.output.to_json()
        return out

    def describe(self) -> str:
        """One line for people: type and parameters (``scale [1.0, 0.5]``)."""
        params = self.params()
        if list(params) == [self.type]:  # "scale [0.5, 0.5]"
            return f"{self.type} {_compact(params[self.type])}"
        body = " ".join(f"{k}={_compact(v)}" for k, v in params.items())
        return f"{self.type} {body}".strip()

    @property
    def applicable(self) -> bool:
        """Whether :meth:`apply` works (False for vector fields and array-stored parameters)."""
        return True

    def with_io(
        self, input: CoordinateSystemRef | None, output: CoordinateSystemRef | None
    ) -> Transform:
        """Return a copy with another ``input`` and ``output``."""
        import dataclasses

        return dataclasses.replace(self, input=input, output=output)


def _compact(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Transform):
        return value.describe()
    return str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity(Transform):
    """``identity``: output = input."""

    type: ClassVar[str] = "identity"

    @override
    def apply(self, points: Any) -> Points:
        return _points(points, None, "identity")

    @override
    def inverse(self) -> Transform:
        return Identity(name=self.name, input=self.output, output=self.input)

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64]:
        return np.eye(ndim_in + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class MapAxis(Transform):
    """``mapAxis``: output axis ``i`` takes input axis ``map[i]`` (a permutation)."""

    type: ClassVar[str] = "mapAxis"
    map: tuple[int, ...] = ()

    @override
    @property
    def ndim_in(self) -> int:
        return len(self.map)

    @override
    def apply(self, points: Any) -> Points:
        pts = _points(points, len(self.map), "mapAxis")
        return pts[:, list(self.map)]

    @override
    def inverse(self) -> Transform:
        inv = [0] * len(self.map)
        for i, j in enumerate(self.map):
            inv[j] = i
        return MapAxis(map=tuple(inv), name=self.name, input=self.output, output=self.input)

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        if ndim_in != len(self.map):
            return None
        m = np.zeros((ndim_in + 1, ndim_in + 1))
        for i, j in enumerate(self.map):
            m[i, j] = 1.0
        m[-1, -1] = 1.0
        return m

    @override
    def params(self) -> dict[str, Any]:
        return {"mapAxis": list(self.map)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectAxis(Transform):
    """``projectAxis``: drop the input axes ``dropped``, then insert zeros at ``created``."""

    type: ClassVar[str] = "projectAxis"
    dropped: tuple[int, ...] = ()
    created: tuple[int, ...] = ()

    @override
    def ndim_out(self, ndim_in: int) -> int:
        return ndim_in - len(self.dropped) + len(self.created)

    @override
    def apply(self, points: Any) -> Points:
        pts = _points(points, None, "projectAxis")
        n_in = pts.shape[1]
        if any(not 0 <= d < n_in for d in self.dropped):
            raise TransformError(f"projectAxis: droppedInputs {list(self.dropped)} out of range.")
        kept = pts[:, [i for i in range(n_in) if i not in self.dropped]]
        n_out = self.ndim_out(n_in)
        if any(not 0 <= c < n_out for c in self.created):
            raise TransformError(f"projectAxis: createdOutputs {list(self.created)} out of range.")
        out = np.zeros((pts.shape[0], n_out))
        out[:, [i for i in range(n_out) if i not in self.created]] = kept
        return out

    @override
    def inverse(self) -> Transform:
        if self.dropped:
            return super(ProjectAxis, self).inverse()
        return ProjectAxis(
            dropped=self.created, created=(), name=self.name, input=self.output, output=self.input
        )

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        try:
            cols = self.apply(np.eye(ndim_in))  # rows: images of the unit vectors
        except TransformError:
            return None
        n_out = cols.shape[1]
        m = np.zeros((n_out + 1, ndim_in + 1))
        m[:n_out, :ndim_in] = cols.T
        m[-1, -1] = 1.0
        return m

    @override
    def params(self) -> dict[str, Any]:
        return {"droppedInputs": list(self.dropped), "createdOutputs": list(self.created)}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Stored(Transform):
    """A transformation whose parameters may be stored in a Zarr array (``path``)."""

    path: str | None = None

    @override
    @property
    def applicable(self) -> bool:
        return self._values() is not None

    def _values(self) -> Any:
        raise NotImplementedError  # pragma: no cover

    def _need(self) -> Any:
        values = self._values()
        if values is None:
            raise UnsupportedTransformError(
                f"the parameters of this {self.type!r} transformation are stored in the Zarr "
                f"array {self.path!r}, which is not read: it is shown but not applied.",
                hint=f"Give the parameters inline (the '{self.type}' field) to use it here.",
            )
        return values

    @override
    def params(self) -> dict[str, Any]:
        values = self._values()
        if values is None:
            return {"path": self.path}
        if isinstance(values, np.ndarray):
            return {self.type: values.tolist()}
        return {self.type: list(values)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Scale(_Stored):
    """``scale``: output = scale * input, one factor per axis."""

    type: ClassVar[str] = "scale"
    scale: tuple[float, ...] | None = None

    def _values(self) -> Any:
        return self.scale

    @override
    @property
    def ndim_in(self) -> int | None:
        return len(self.scale) if self.scale is not None else None

    @override
    def apply(self, points: Any) -> Points:
        s = self._need()
        return np.asarray(_points(points, len(s), "scale") * np.asarray(s), dtype=np.float64)

    @override
    def inverse(self) -> Transform:
        s = self._need()
        if any(v == 0 for v in s):
            raise NotInvertibleError(f"scale {list(s)} has a zero factor: it cannot be inverted.")
        return Scale(
            scale=tuple(1.0 / v for v in s), name=self.name, input=self.output, output=self.input
        )

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        if self.scale is None or len(self.scale) != ndim_in:
            return None
        return np.diag([*self.scale, 1.0])


@dataclass(frozen=True, slots=True, kw_only=True)
class Translation(_Stored):
    """``translation``: output = input + translation."""

    type: ClassVar[str] = "translation"
    translation: tuple[float, ...] | None = None

    def _values(self) -> Any:
        return self.translation

    @override
    @property
    def ndim_in(self) -> int | None:
        return len(self.translation) if self.translation is not None else None

    @override
    def apply(self, points: Any) -> Points:
        t = self._need()
        return np.asarray(_points(points, len(t), "translation") + np.asarray(t), dtype=np.float64)

    @override
    def inverse(self) -> Transform:
        t = self._need()
        return Translation(
            translation=tuple(-v for v in t), name=self.name, input=self.output, output=self.input
        )

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        if self.translation is None or len(self.translation) != ndim_in:
            return None
        m = np.eye(ndim_in + 1)
        m[:ndim_in, -1] = self.translation
        return m


@dataclass(frozen=True, slots=True, kw_only=True)
class Affine(_Stored):
    """``affine``: the upper ``M x (N+1)`` rows of a homogeneous matrix."""

    type: ClassVar[str] = "affine"
    affine: NDArray[np.float64] | None = field(default=None, compare=False)

    def _values(self) -> Any:
        return self.affine

    @override
    @property
    def ndim_in(self) -> int | None:
        return self.affine.shape[1] - 1 if self.affine is not None else None

    @override
    def ndim_out(self, ndim_in: int) -> int:
        return self.affine.shape[0] if self.affine is not None else ndim_in

    @override
    def apply(self, points: Any) -> Points:
        a = self._need()
        pts = _points(points, a.shape[1] - 1, "affine")
        return np.asarray(pts @ a[:, :-1].T + a[:, -1], dtype=np.float64)

    @override
    def inverse(self) -> Transform:
        a = self._need()
        if a.shape[0] != a.shape[1] - 1:
            raise NotInvertibleError(
                f"an affine from {a.shape[1] - 1} to {a.shape[0]} dimensions cannot be inverted."
            )
        full = np.vstack([a, np.eye(a.shape[1])[-1]])
        try:
            inv = np.linalg.inv(full)
        except np.linalg.LinAlgError:
            raise NotInvertibleError(
                "the affine matrix is singular: it cannot be inverted."
            ) from None
        return Affine(affine=inv[:-1], name=self.name, input=self.output, output=self.input)

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        if self.affine is None or self.affine.shape[1] != ndim_in + 1:
            return None
        return np.vstack([self.affine, np.eye(ndim_in + 1)[-1]])


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation(_Stored):
    """``rotation``: an ``N x N`` rotation matrix applied to column vectors."""

    type: ClassVar[str] = "rotation"
    rotation: NDArray[np.float64] | None = field(default=None, compare=False)

    def _values(self) -> Any:
        return self.rotation

    @override
    @property
    def ndim_in(self) -> int | None:
        return self.rotation.shape[0] if self.rotation is not None else None

    @override
    def apply(self, points: Any) -> Points:
        r = self._need()
        return np.asarray(_points(points, r.shape[0], "rotation") @ r.T, dtype=np.float64)

    @override
    def inverse(self) -> Transform:
        r = self._need()
        try:  # the exact inverse: stored rotations are often rounded, not quite orthonormal
            inv = np.linalg.inv(r)
        except np.linalg.LinAlgError:
            raise NotInvertibleError("the rotation matrix is singular.") from None
        return Rotation(rotation=inv, name=self.name, input=self.output, output=self.input)

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        if self.rotation is None or self.rotation.shape[0] != ndim_in:
            return None
        m = np.eye(ndim_in + 1)
        m[:ndim_in, :ndim_in] = self.rotation
        return m


@dataclass(frozen=True, slots=True, kw_only=True)
class Sequence_(Transform):
    """``sequence``: apply ``transformations`` in order (the first one first)."""

    type: ClassVar[str] = "sequence"
    transformations: tuple[Transform, ...] = ()

    @override
    @property
    def applicable(self) -> bool:
        return all(t.applicable for t in self.transformations)

    @override
    @property
    def ndim_in(self) -> int | None:
        return self.transformations[0].ndim_in if self.transformations else None

    @override
    def ndim_out(self, ndim_in: int) -> int:
        n = ndim_in
        for t in self.transformations:
            n = t.ndim_out(n)
        return n

    @override
    def apply(self, points: Any) -> Points:
        pts = _points(points, None, "sequence")
        for t in self.transformations:
            pts = t.apply(pts)
        return pts

    @override
    def inverse(self) -> Transform:
        return Sequence_(
            transformations=tuple(t.inverse() for t in reversed(self.transformations)),
            name=self.name,
            input=self.output,
            output=self.input,
        )

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        m = np.eye(ndim_in + 1)
        n = ndim_in
        for t in self.transformations:
            tm = t.matrix(n)
            if tm is None:
                return None
            m = tm @ m
            n = tm.shape[0] - 1
        return m

    @override
    def params(self) -> dict[str, Any]:
        return {"transformations": [t.to_json() for t in self.transformations]}

    @override
    def describe(self) -> str:
        return "sequence [" + "; ".join(t.describe() for t in self.transformations) + "]"


@dataclass(frozen=True, slots=True)
class ByDimensionPart:
    """One item of a ``byDimension``: a transformation of some input axes to some output axes."""

    input_axes: tuple[int, ...]
    output_axes: tuple[int, ...]
    transformation: Transform


@dataclass(frozen=True, slots=True, kw_only=True)
class ByDimension(Transform):
    """``byDimension``: lower-dimensional transformations on subsets of the axes."""

    type: ClassVar[str] = "byDimension"
    parts: tuple[ByDimensionPart, ...] = ()

    @override
    @property
    def applicable(self) -> bool:
        return all(p.transformation.applicable for p in self.parts)

    @override
    def ndim_out(self, ndim_in: int) -> int:
        return 1 + max((max(p.output_axes, default=-1) for p in self.parts), default=-1)

    @override
    def apply(self, points: Any) -> Points:
        pts = _points(points, None, "byDimension")
        n_out = self.ndim_out(pts.shape[1])
        out = np.zeros((pts.shape[0], n_out))
        for p in self.parts:
            if any(not 0 <= i < pts.shape[1] for i in p.input_axes):
                raise TransformError(
                    f"byDimension: input axes {list(p.input_axes)} do not exist in "
                    f"{pts.shape[1]}-dimensional points."
                )
            res = p.transformation.apply(pts[:, list(p.input_axes)])
            if res.shape[1] != len(p.output_axes):
                raise TransformError(
                    f"byDimension: a {p.transformation.type!r} gives {res.shape[1]} coordinates "
                    f"for the output axes {list(p.output_axes)}."
                )
            out[:, list(p.output_axes)] = res
        return out

    @override
    def inverse(self) -> Transform:
        return ByDimension(
            parts=tuple(
                ByDimensionPart(p.output_axes, p.input_axes, p.transformation.inverse())
                for p in self.parts
            ),
            name=self.name,
            input=self.output,
            output=self.input,
        )

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        n_out = self.ndim_out(ndim_in)
        m = np.zeros((n_out + 1, ndim_in + 1))
        m[-1, -1] = 1.0
        for p in self.parts:
            sub = p.transformation.matrix(len(p.input_axes))
            if sub is None or sub.shape[0] - 1 != len(p.output_axes):
                return None
            if any(not 0 <= i < ndim_in for i in p.input_axes):
                return None
            for r, o in enumerate(p.output_axes):
                for c, i in enumerate(p.input_axes):
                    m[o, i] = sub[r, c]
                m[o, -1] = sub[r, -1]
        return m

    @override
    def params(self) -> dict[str, Any]:
        return {
            "transformations": [
                {
                    "transformation": p.transformation.to_json(),
                    "inputAxes": list(p.input_axes),
                    "outputAxes": list(p.output_axes),
                }
                for p in self.parts
            ]
        }

    @override
    def describe(self) -> str:
        return (
            "byDimension ["
            + "; ".join(
                f"{list(p.input_axes)}->{list(p.output_axes)}: {p.transformation.describe()}"
                for p in self.parts
            )
            + "]"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Bijection(Transform):
    """``bijection``: an explicit ``forward`` transformation and its ``inverse``."""

    type: ClassVar[str] = "bijection"
    forward: Transform = field(default_factory=Identity)
    inverse_: Transform = field(default_factory=Identity)

    @override
    @property
    def applicable(self) -> bool:
        return self.forward.applicable

    @override
    def ndim_out(self, ndim_in: int) -> int:
        return self.forward.ndim_out(ndim_in)

    @override
    def apply(self, points: Any) -> Points:
        return self.forward.apply(points)

    @override
    def inverse(self) -> Transform:
        return Bijection(
            forward=self.inverse_,
            inverse_=self.forward,
            name=self.name,
            input=self.output,
            output=self.input,
        )

    @override
    def matrix(self, ndim_in: int) -> NDArray[np.float64] | None:
        return self.forward.matrix(ndim_in)

    @override
    def params(self) -> dict[str, Any]:
        return {"forward": self.forward.to_json(), "inverse": self.inverse_.to_json()}

    @override
    def describe(self) -> str:
        return f"bijection [forward {self.forward.describe()}; inverse {self.inverse_.describe()}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldTransform(Transform):
    """A vector field stored at ``path`` (``displacements``, ``coordinates``): shown only."""

    path: str | None = None
    interpolation: str | None = None

    @override
    @property
    def applicable(self) -> bool:
        return False

    @override
    def apply(self, points: Any) -> Points:
        raise UnsupportedTransformError(
            f"a {self.type!r} transformation (vector field at {self.path!r}"
            + (f", {self.interpolation} interpolation" if self.interpolation else "")
            + ") is not applied here: it is shown in the metadata only.",
        )

    @override
    def inverse(self) -> Transform:
        raise NotInvertibleError(
            f"a {self.type!r} transformation has no closed-form inverse; wrap it in a "
            "'bijection' with an explicit inverse."
        )

    @override
    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.interpolation is not None:
            out["interpolation"] = self.interpolation
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Displacements(FieldTransform):
    """``displacements``: a field of vectors added to the input points."""

    type: ClassVar[str] = "displacements"


@dataclass(frozen=True, slots=True, kw_only=True)
class Coordinates(FieldTransform):
    """``coordinates``: a field of output positions for the input points."""

    type: ClassVar[str] = "coordinates"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownTransform(Transform):
    """A transformation type this version of the specification does not define."""

    type: ClassVar[str] = "unknown"
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def raw_type(self) -> str:
        """The ``type`` as written."""
        t = self.raw.get("type")
        return t if isinstance(t, str) else "?"

    @override
    @property
    def applicable(self) -> bool:
        return False

    @override
    def apply(self, points: Any) -> Points:
        raise UnsupportedTransformError(
            f"the transformation type {self.raw_type!r} is not defined by OME-NGFF 0.6; it is "
            "not applied."
        )

    @override
    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)

    @override
    def describe(self) -> str:
        return f"{self.raw_type} (unknown type)"


# ------------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------------


def _ref(raw: Any, what: str, where: str, *, path_key: bool = False) -> CoordinateSystemRef | None:
    """``input``/``output``: 0.6rc0 objects ``{"name", "path"}``; older drafts a plain string."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return CoordinateSystemRef(path=raw) if path_key else CoordinateSystemRef(name=raw)
    if isinstance(raw, Mapping):
        name, path = raw.get("name"), raw.get("path")
        if (name is not None and not isinstance(name, str)) or (
            path is not None and not isinstance(path, str)
        ):
            raise TransformError(f"{where}: '{what}' name and path must be strings.")
        return CoordinateSystemRef(name=name, path=path)
    raise TransformError(f"{where}: '{what}' must be an object with 'name' and/or 'path'.")


def _vector(raw: Mapping[str, Any], key: str, where: str) -> tuple[float, ...] | None:
    if key not in raw:
        if isinstance(raw.get("path"), str):
            return None
        raise TransformError(f"{where}: a {key!r} transformation needs the list '{key}'.")
    vec = raw[key]
    if (
        not isinstance(vec, list)
        or not vec
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in vec)
        or not all(math.isfinite(v) for v in vec)
    ):
        raise TransformError(f"{where}: '{key}' must be a non-empty list of finite numbers.")
    if len(vec) > MAX_AXES:
        raise TransformError(f"{where}: '{key}' has more than {MAX_AXES} values.")
    return tuple(float(v) for v in vec)


def _matrix(raw: Mapping[str, Any], key: str, where: str) -> NDArray[np.float64] | None:
    if key not in raw:
        if isinstance(raw.get("path"), str):
            return None
        raise TransformError(f"{where}: an {key!r} transformation needs the matrix '{key}'.")
    rows = raw[key]
    ok = (
        isinstance(rows, list)
        and rows
        and all(isinstance(r, list) and r for r in rows)
        and len({len(r) for r in rows}) == 1
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for r in rows
            for v in r
        )
    )
    if not ok:
        raise TransformError(
            f"{where}: '{key}' must be a list of rows of finite numbers, all of one length."
        )
    if len(rows) > MAX_AXES or len(rows[0]) > MAX_AXES + 1:
        raise TransformError(f"{where}: '{key}' is larger than {MAX_AXES} axes.")
    m = np.asarray(rows, dtype=np.float64)
    if key == "rotation" and m.shape[0] != m.shape[1]:
        raise TransformError(
            f"{where}: a rotation must be square, found {m.shape[0]}x{m.shape[1]}."
        )
    if key == "affine" and m.shape[1] < 2:
        raise TransformError(f"{where}: an affine needs N+1 >= 2 columns.")
    return m


def _ints(raw: Any, key: str, where: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw
    ):
        raise TransformError(f"{where}: '{key}' must be a list of non-negative integers.")
    if len(set(raw)) != len(raw):
        raise TransformError(f"{where}: '{key}' must not repeat an index ({raw}).")
    return tuple(raw)


def parse_transform(
    raw: Any, where: str = "transformation", *, dataset: bool = False, _depth: int = 0
) -> Transform:
    """Parse one transformation object of OME-NGFF 0.6.

    Parameters
    ----------
    raw
        The JSON object.
    where
        Where it is, for messages (``"multiscales[0].coordinateTransformations[1]"``).
    dataset
        A transformation of ``datasets``: a plain-string ``input`` is the array's path.

    Raises
    ------
    TransformError
        The object is not a valid transformation (the message says what is wrong and where).
    """
    if _depth > MAX_DEPTH:
        raise TransformError(f"{where}: transformations nested deeper than {MAX_DEPTH} levels.")
    if not isinstance(raw, Mapping):
        raise TransformError(f"{where}: a transformation must be a JSON object.")
    typ = raw.get("type")
    if not isinstance(typ, str):
        raise TransformError(f"{where}: 'type' must be a string naming the transformation.")
    name = raw.get("name")
    common: dict[str, Any] = {
        "name": name if isinstance(name, str) else None,
        "input": _ref(raw.get("input"), "input", where, path_key=dataset),
        "output": _ref(raw.get("output"), "output", where),
    }
    path = raw.get("path") if isinstance(raw.get("path"), str) else None

    def sub(item: Any, k: int | str) -> Transform:
        return parse_transform(item, f"{where}.{k}", _depth=_depth + 1)

    if typ == "identity":
        return Identity(**common)
    if typ == "mapAxis":
        m = raw.get("mapAxis")
        if isinstance(m, Mapping):  # early 0.6 drafts: {"output axis name": "input axis name"}
            raise UnsupportedTransformError(
                f"{where}: 'mapAxis' as an object of axis names is an early-draft form; "
                "0.6 uses a list of input axis indices."
            )
        perm = _ints(m, "mapAxis", where)
        if sorted(perm) != list(range(len(perm))):
            raise TransformError(f"{where}: 'mapAxis' {list(perm)} is not a permutation.")
        return MapAxis(map=perm, **common)
    if typ == "projectAxis":
        return ProjectAxis(
            dropped=_ints(raw.get("droppedInputs", []), "droppedInputs", where),
            created=_ints(raw.get("createdOutputs", []), "createdOutputs", where),
            **common,
        )
    if typ == "scale":
        return Scale(scale=_vector(raw, "scale", where), path=path, **common)
    if typ == "translation":
        return Translation(translation=_vector(raw, "translation", where), path=path, **common)
    if typ == "affine":
        return Affine(affine=_matrix(raw, "affine", where), path=path, **common)
    if typ == "rotation":
        return Rotation(rotation=_matrix(raw, "rotation", where), path=path, **common)
    if typ == "sequence":
        items = raw.get("transformations")
        if not isinstance(items, list) or not items:
            raise TransformError(f"{where}: a sequence needs a non-empty 'transformations' list.")
        return Sequence_(
            transformations=tuple(sub(t, f"transformations[{i}]") for i, t in enumerate(items)),
            **common,
        )
    if typ == "byDimension":
        items = raw.get("transformations")
        if not isinstance(items, list) or not items:
            raise TransformError(
                f"{where}: a byDimension needs a non-empty 'transformations' list."
            )
        parts = []
        for i, item in enumerate(items):
            iw = f"{where}.transformations[{i}]"
            if not isinstance(item, Mapping):
                raise TransformError(f"{iw}: must be an object.")
            # 0.6rc0: {"transformation", "inputAxes", "outputAxes"}; earlier drafts put the
            # axes (input_axes / output_axes) on the transformation itself.
            inner = item.get("transformation", item)
            ia = item.get("inputAxes", item.get("input_axes"))
            oa = item.get("outputAxes", item.get("output_axes"))
            if ia is None or oa is None:
                raise TransformError(f"{iw}: needs 'inputAxes' and 'outputAxes'.")
            in_axes, out_axes = _ints(ia, "inputAxes", iw), _ints(oa, "outputAxes", iw)
            if len(in_axes) != len(out_axes):
                raise TransformError(f"{iw}: 'inputAxes' and 'outputAxes' differ in length.")
            parts.append(ByDimensionPart(in_axes, out_axes, sub(inner, f"transformations[{i}]")))
        outs = [o for p in parts for o in p.output_axes]
        if len(set(outs)) != len(outs):
            raise TransformError(f"{where}: an output axis appears in more than one item.")
        if sorted(outs) != list(range(len(outs))):
            raise TransformError(
                f"{where}: the output axes {sorted(outs)} must cover 0..{len(outs) - 1} once each."
            )
        return ByDimension(parts=tuple(parts), **common)
    if typ == "bijection":
        if "forward" not in raw or "inverse" not in raw:
            raise TransformError(f"{where}: a bijection needs 'forward' and 'inverse'.")
        return Bijection(
            forward=sub(raw["forward"], "forward"),
            inverse_=sub(raw["inverse"], "inverse"),
            **common,
        )
    if typ in ("displacements", "coordinates"):
        interp = raw.get("interpolation")
        cls = Displacements if typ == "displacements" else Coordinates
        return cls(
            path=path,
            interpolation=interp if isinstance(interp, str) else None,
            **common,
        )
    return UnknownTransform(raw=dict(raw), **common)


def as_scale_translation(
    t: Transform, ndim: int
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Return the scale and translation of *t* on *ndim* axes, or None.

    None unless *t* is a diagonal affine (scale and translation only).
    """
    m = t.matrix(ndim)
    if m is None or m.shape != (ndim + 1, ndim + 1):
        return None
    lin = m[:ndim, :ndim]
    if np.count_nonzero(lin - np.diag(np.diag(lin))):
        return None
    return tuple(float(v) for v in np.diag(lin)), tuple(float(v) for v in m[:ndim, -1])


# ------------------------------------------------------------------------------------------------
# Graphs of coordinate systems
# ------------------------------------------------------------------------------------------------

#: A coordinate system in a hierarchy: (group path, name). Arrays of datasets are (array path, "").
SystemKey = tuple[str, str]


def join_path(base: str, path: str | None) -> str:
    """Join a group path and a relative path inside the store (``..`` refused)."""
    from napari_zarr_explorer.store import safe_join

    return safe_join(base, path) if path else base.strip("/")


@dataclass
class TransformGraph:
    """Coordinate systems (nodes) and transformations (edges) of a hierarchy."""

    systems: dict[SystemKey, int | None] = field(default_factory=dict)
    edges: list[tuple[SystemKey, SystemKey, Transform]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add_system(self, key: SystemKey, ndim: int | None) -> None:
        """Add a coordinate system of *ndim* axes."""
        self.systems.setdefault(key, ndim)

    def add(self, src: SystemKey, dst: SystemKey, t: Transform) -> None:
        """Add a transformation from *src* to *dst*."""
        self.edges.append((src, dst, t))

    def resolve(self, name: str, *, default_path: str = "") -> SystemKey:
        """Return the system a user means by *name*.

        That is a name at *default_path*, a unique name anywhere, ``path#name``, or the path
        of a dataset's array.

        Raises
        ------
        TransformError
            No such coordinate system, or the name is ambiguous.
        """
        keys = set(self.systems) | {k for e in self.edges for k in e[:2]}
        if "#" in name:
            path, _, cs = name.rpartition("#")
            key = (path.strip("/"), cs)
            if key in keys:
                return key
        if (default_path, name) in keys:
            return (default_path, name)
        named = sorted(k for k in keys if k[1] == name)
        if len(named) == 1:
            return named[0]
        if (name.strip("/"), "") in keys:
            return (name.strip("/"), "")
        known = ", ".join(sorted(_key_str(k) for k in keys)) or "none"
        if len(named) > 1:
            raise TransformError(
                f"the coordinate system name {name!r} is ambiguous: "
                + ", ".join(_key_str(k) for k in named),
                hint="Name it as PATH#NAME.",
            )
        raise TransformError(
            f"no coordinate system {name!r} in the metadata (known: {known}).",
        )

    def find(self, src: SystemKey, dst: SystemKey) -> Transform:
        """Return the transformation from *src* to *dst*.

        It is a shortest chain of edges, each inverted where it is walked backwards.

        Raises
        ------
        TransformError
            No chain of (invertible where needed) transformations links them.
        """
        if src == dst:
            return Identity(input=_as_ref(src), output=_as_ref(dst))
        adj: dict[SystemKey, list[tuple[SystemKey, Callable[[], Transform]]]] = {}
        for a, b, t in self.edges:
            adj.setdefault(a, []).append((b, _const(t)))
            adj.setdefault(b, []).append((a, t.inverse))
        prev: dict[SystemKey, tuple[SystemKey, Callable[[], Transform]]] = {}
        seen = {src}
        queue = deque([src])
        blocked: list[str] = []
        while queue:
            node = queue.popleft()
            for nxt, get in adj.get(node, []):
                if nxt in seen:
                    continue
                try:
                    get()
                except TransformError as exc:
                    blocked.append(exc.message)
                    continue
                seen.add(nxt)
                prev[nxt] = (node, get)
                if nxt == dst:
                    queue.clear()
                    break
                queue.append(nxt)
        if dst not in prev:
            why = f" ({'; '.join(dict.fromkeys(blocked))})" if blocked else ""
            raise TransformError(
                f"no chain of transformations leads from {_key_str(src)!r} to "
                f"{_key_str(dst)!r}{why}."
            )
        chain: list[Transform] = []
        node = dst
        while node != src:
            before, get = prev[node]
            chain.append(get())
            node = before
        chain.reverse()
        if len(chain) == 1:
            return chain[0]
        return Sequence_(transformations=tuple(chain), input=_as_ref(src), output=_as_ref(dst))

    def ndim(self, key: SystemKey) -> int | None:
        """Return the number of axes of a system, when known."""
        return self.systems.get(key)


def _const(t: Transform) -> Callable[[], Transform]:
    return lambda: t


def _as_ref(key: SystemKey) -> CoordinateSystemRef:
    return CoordinateSystemRef(name=key[1] or None, path=key[0] or None)


def _key_str(key: SystemKey) -> str:
    path, name = key
    if not name:
        return path
    return f"{path}#{name}" if path else name


def transform_points(t: Transform, points: Sequence[Sequence[float]] | Points) -> list[list[float]]:
    """Apply *t* to *points* and return plain lists (for JSON)."""
    return [[float(v) for v in row] for row in t.apply(points)]


def layer_placement(
    matrix: NDArray[np.float64],
    scale: Sequence[float] | None,
    translate: Sequence[float] | None,
    *,
    drop_axis: int | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Return napari ``scale``/``translate``/``affine`` for a layer placed by *matrix*.

    The layer's data already map to its intrinsic system by *scale* and *translate* (of the
    displayed axes); *matrix* (homogeneous, over every axis of the intrinsic system) maps that
    system to the displayed one. A diagonal *matrix* folds into scale and translate; any other
    becomes the layer's ``affine``. *drop_axis* (a channel axis split into layers) is removed
    from *matrix*; the second value is a problem to report when that axis is mixed with others.
    """
    m = np.asarray(matrix, dtype=np.float64)
    problem = None
    if drop_axis is not None:
        n = m.shape[0] - 1
        others = [i for i in range(n) if i != drop_axis]
        if np.count_nonzero(m[drop_axis, others]) or np.count_nonzero(m[others, drop_axis]):
            problem = "the transformation mixes the channel axis with others; that part is ignored"
        keep = [*others, n]
        m = m[np.ix_(keep, keep)]
    n = m.shape[0] - 1
    s = np.asarray(scale if scale is not None else [1.0] * n, dtype=np.float64)
    t = np.asarray(translate if translate is not None else [0.0] * n, dtype=np.float64)
    lin = m[:n, :n]
    out: dict[str, Any] = {}
    if not np.count_nonzero(lin - np.diag(np.diag(lin))):
        d = np.diag(lin)
        out["scale"] = tuple(float(v) for v in d * s)
        out["translate"] = tuple(float(v) for v in d * t + m[:n, -1])
    else:
        out["scale"] = tuple(float(v) for v in s)
        out["translate"] = tuple(float(v) for v in t)
        out["affine"] = m
    return out, problem
