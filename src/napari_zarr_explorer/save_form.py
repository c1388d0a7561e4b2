"""The save dialog as a magicgui form, declared without Qt (runs in napari and in Jupyter).

:class:`SaveForm` holds the choices of :func:`napari_zarr_explorer.writer.save`: output,
layers, OME-Zarr version, codec (the choices of the Recompress dock,
:class:`napari_zarr_explorer.forms.CodecForm`), chunk and shard shapes (defaulted from the data),
overwrite, and shows what will be written with an estimate of its size measured on sampled
chunks. A view (the napari dock in ``_qt/save.py``) gives it the layers and runs the save.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from magicgui.types import FileDialogMode
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    Label,
    LineEdit,
    PushButton,
    Select,
)

from napari_zarr_explorer.errors import error_message
from napari_zarr_explorer.forms import CodecForm

__all__ = ["SaveForm"]


def _shape_text(shape: Sequence[int] | None) -> str:
    return "" if not shape else ", ".join(str(int(n)) for n in shape)


class SaveForm(CodecForm):
    """Choices for saving layers as OME-Zarr, with defaults and an estimate from the data.

    The codec fields, their rules and their messages are those of the Recompress dock
    (:class:`napari_zarr_explorer.forms.CodecForm`): filters, image and array codecs, lossy
    codecs with their setting, compressor, level and blosc shuffle.

    Parameters
    ----------
    get_layers
        Returns ``{name: layer}`` of the layers that can be saved (napari layers or
        ``(data, kwargs, layer_type)`` tuples).
    """

    def __init__(self, get_layers: Callable[[], dict[str, Any]] | None = None) -> None:
        self._get_layers = get_layers or dict
        self.path = FileEdit(mode=FileDialogMode.OPTIONAL_FILE, label="Save to", filter="*.zarr")
        self.layer_names = Select(label="Layers", choices=[], allow_multiple=True)
        self.ome_version = ComboBox(
            label="OME-Zarr",
            choices=["0.5", "0.4"],
            value="0.5",
            tooltip="0.5: Zarr v3, sharded. 0.4: Zarr v2, read by older tools.",
        )
        codec_rows = self._codec_rows()
        self.chunks = LineEdit(label="Chunks", tooltip="Chunk shape, OME axis order (t,c,z,y,x)")
        self.shards = LineEdit(label="Shards", tooltip="Shard shape (Zarr v3); 'none' for none")
        self.overwrite = CheckBox(
            label="Overwrite",
            value=False,
            tooltip="Replace an existing Zarr store (written beside it, verified, then swapped).",
        )
        self.estimate = Label(label="Estimate", value="")
        self.save_button = PushButton(text="Save")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(label="", value="")
        super().__init__(
            [
                self.path,
                self.layer_names,
                self.ome_version,
                *codec_rows,
                self.chunks,
                self.shards,
                self.overwrite,
                self.estimate,
                self.save_button,
                self.cancel_button,
                self.status,
            ]
        )
        # the chunks filled in from the data, and the shards suggested with the chunks shown
        self._defaults: tuple[str, str] = ("", "")
        # the data's own shards, the shape of the main image, and the shards the user typed
        # (kept while OME-Zarr 0.4, which has none, is chosen)
        self._data_shards = ""
        self._shape: tuple[int, ...] | None = None
        self._typed_shards: str | None = None
        self._connect_codec()
        self.ome_version.changed.connect(self._layout_changed)
        self.layer_names.changed.connect(self._layers_changed)
        # after the codec rules have set the other fields (quietly): one estimate per choice
        for choice in (self.codec, self.compressor):
            choice.changed.connect(self.update_estimate)
        for field in (self.lossy_value, self.level, self.shuffle, self.shards):
            field.changed.connect(self._user_changed)
        self.chunks.changed.connect(self._chunks_changed)

    # ---------------------------------------------------------------- choices
    def save_compressor(self) -> str:
        """Return the chosen encoding as a codec spec, blosc shuffle included.

        Raises
        ------
        ExplorerError
            When a lossy codec is chosen without a number for its setting.
        """
        text = self.compressor_text()
        shuffle = self.shuffle_value()
        if shuffle is None:
            return text
        from napari_zarr_explorer.codec_spec import parse_compressor

        return parse_compressor(text, shuffle=shuffle).label

    def save_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`napari_zarr_explorer.writer.save`.

        Raises
        ------
        ExplorerError
            When a lossy codec is chosen without a number for its setting.
        """
        chunks = str(self.chunks.value).strip() or None
        shards: str | None = str(self.shards.value).strip() or None
        if self.ome_version.value == "0.4":
            shards = None
        return {
            "ome_version": str(self.ome_version.value),
            "compressor": self.save_compressor(),
            "chunks": chunks,
            "shards": shards,
            "overwrite": bool(self.overwrite.value),
        }

    def output_text(self) -> str:
        """Return the output as typed: a path, or a URL (``s3://...``).

        The field's value is a path, which would make ``s3://b/x`` the local ``s3:/b/x``.
        """
        return str(self.path.line_edit.value or "").strip()

    def selected_layers(self) -> list[Any]:
        """Return the chosen layers, in the order of the layer list."""
        layers = self._get_layers()
        chosen = set(self.layer_names.value or [])
        return [layer for name, layer in layers.items() if name in chosen]

    # ---------------------------------------------------------------- updates
    def refresh_layers(self) -> None:
        """Re-read the layers; keep the choice where possible (all chosen at first)."""
        names = list(self._get_layers())
        old = set(self.layer_names.value or [])
        self.layer_names.choices = names
        keep = [n for n in names if n in old] or names
        self.layer_names.value = keep
        self._layers_changed()

    def _user_changed(self, *_: Any) -> None:
        if not self._quiet:  # the program's changes come with an estimate of their own
            self.update_estimate()

    def _shards_typed(self) -> bool:
        return str(self.shards.value).strip() not in ("", self._defaults[1])

    def _chunks_changed(self, *_: Any) -> None:
        """Make the shards follow the chunks typed, unless the user typed the shards too.

        Empty chunks are the data's default ones, with their shards; chunks typed get shards
        made of whole chunks (:func:`napari_zarr_explorer.recompress.suggest_shards`).
        """
        if self._quiet:
            return
        if self.ome_version.value == "0.5" and not self._shards_typed():
            from napari_zarr_explorer.errors import ExplorerError
            from napari_zarr_explorer.forms import parse_shape

            shards: str | None = None
            try:
                chunks = parse_shape(str(self.chunks.value), "Chunks")
            except ExplorerError:  # being typed: the shards stay as they are
                chunks = None
            else:
                shards = self._data_shards
            if isinstance(chunks, tuple) and self._shape:
                from napari_zarr_explorer.recompress import suggest_shards

                shards = _shape_text(suggest_shards(self._shape, chunks))
            if shards is not None:
                self._defaults = (self._defaults[0], shards)
                with self.quietly():
                    self.shards.value = shards
        self.update_estimate()

    def _layout_changed(self, *_: Any) -> None:
        v5 = self.ome_version.value == "0.5"
        if not v5 and self._shards_typed():  # back when 0.5 is chosen again
            self._typed_shards = str(self.shards.value).strip()
        self.shards.enabled = v5
        self._set_defaults()
        if v5 and self._typed_shards is not None:
            with self.quietly():
                self.shards.value = self._typed_shards
            self._typed_shards = None
            self.update_estimate()

    def _layers_changed(self, *_: Any) -> None:
        self._set_defaults()

    def _set_defaults(self) -> None:
        """Fill chunk and shard shapes from the data (unless the user changed them)."""
        layers = self.selected_layers()
        if not layers:
            self.estimate.value = ""
            return
        from napari_zarr_explorer.writer import preview_save

        try:
            pv = preview_save(layers, ome_version=str(self.ome_version.value), compressor="none")
        except Exception as exc:  # a form must never fail on what the data is
            self.estimate.value = error_message(exc)
            return
        chunks, shards = _shape_text(pv.chunks), _shape_text(pv.shards)
        self._shape, self._data_shards = tuple(pv.shape), shards
        typed_chunks = str(self.chunks.value).strip() not in ("", self._defaults[0])
        if not typed_chunks:
            self.chunks.value = chunks
        elif shards:  # the shards that go with the chunks the user typed
            from napari_zarr_explorer.errors import ExplorerError
            from napari_zarr_explorer.forms import parse_shape
            from napari_zarr_explorer.recompress import suggest_shards

            try:
                given = parse_shape(str(self.chunks.value), "Chunks")
            except ExplorerError:
                given = None
            if isinstance(given, tuple):
                shards = _shape_text(suggest_shards(self._shape, given))
        with self.quietly():
            if not self._shards_typed() or not shards:
                self.shards.value = shards
        self._defaults = (chunks, shards)
        self.update_estimate()

    def update_estimate(self, *_: Any) -> None:
        """Show what will be written and its estimated size."""
        layers = self.selected_layers()
        if not layers:
            self.estimate.value = "no layer chosen"
            return
        from napari_zarr_explorer.writer import preview_save

        try:
            opts = self.save_options()
            pv = preview_save(
                layers,
                ome_version=opts["ome_version"],
                compressor=opts["compressor"],
                chunks=opts["chunks"],
                shards=opts["shards"],
            )
        except Exception as exc:  # a form must never fail on what the data is
            self.estimate.value = error_message(exc)
            return
        from napari_zarr_explorer.forms import layout_note

        # fewer values than dimensions: how they apply (the rule of the command line)
        note = layout_note(str(self.chunks.value), opts["shards"] or "", pv.shape)
        self.estimate.value = f"{note} {pv}" if note else str(pv)
