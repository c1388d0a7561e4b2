"""The parameter forms of the docks, declared once with magicgui and without Qt.

The same forms serve the napari docks (magicgui's Qt backend) and the Jupyter explorer (its
ipywidgets backend): :class:`OpenForm` (the Explorer's open box), :class:`RecompressForm`
(recompress and estimate options with their buttons) and :class:`ChunkMapForm` (the chunk map
controls). Which backend draws them is magicgui's choice (``magicgui.use_app``); this module
imports neither Qt nor ipywidgets.

Every form remembers the fields the user changed (:attr:`Form.edited`): :meth:`Form.suggest`
fills in defaults only where the user has not typed anything, so what the user typed stays until
the user changes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from magicgui.widgets.bases import ValueWidget, Widget

from napari_zarr_explorer.errors import ExplorerError

__all__ = [
    "ALTERNATIVES",
    "CODECS",
    "COLOR_MODES",
    "COMPRESSORS",
    "ChunkMapForm",
    "CodecForm",
    "Form",
    "OpenForm",
    "RecompressForm",
    "layout_note",
    "parse_shape",
    "shape_text",
]

#: compressor -> (levels (min, max, default) or None, whether blosc shuffles apply)
COMPRESSORS: dict[str, tuple[tuple[int, int, int] | None, bool]] = {
    "zstd": ((1, 22, 3), False),
    "blosc-zstd": ((0, 9, 5), True),
    "blosc-lz4": ((0, 9, 5), True),
    "blosc-lz4hc": ((0, 9, 5), True),
    "gzip": ((0, 9, 6), False),
    "lzw": (None, False),
    "none": (None, False),
}
#: codec choice -> (what the list shows, its lossy setting ``(key, label, default)`` or None).
#: Filters (shuffle, delta...) and lossy filters go in front of the compressor; image and array
#: codecs (png, zfp...) replace it. Lossy choices say so, and name their error setting.
CODECS: dict[str, tuple[str, tuple[str, str, str] | None]] = {
    "": ("compressor only", None),
    "shuffle": ("shuffle + compressor", None),
    "bitshuffle": ("bitshuffle + compressor (v2)", None),
    "delta": ("delta + compressor (integers)", None),
    "png": ("png (lossless)", None),
    "jpeg2k": ("jpeg2k (lossless)", None),
    "jpegxl": ("jpegxl (lossless)", None),
    "lerc": ("lerc (lossless)", None),
    "webp": ("webp, RGB (lossless)", None),
    "zfp:reversible": ("zfp (lossless)", None),
    "zfpy": ("zfpy (lossless)", None),
    "lerc:maxerror": ("lerc (LOSSY: max error)", ("maxerror", "Max error", "0.01")),
    "zfpy:tolerance": ("zfpy (LOSSY: tolerance)", ("tolerance", "Tolerance", "0.001")),
    "quantize:digits": ("quantize (LOSSY: digits)", ("digits", "Digits", "3")),
    "bitround:keepbits": ("bitround (LOSSY: bits)", ("keepbits", "Mantissa bits", "10")),
    "fixedscaleoffset:scale": ("fixedscaleoffset (LOSSY)", ("scale", "Scale", "100")),
    "jpeg2k:psnr": ("jpeg2k (LOSSY: PSNR)", ("psnr", "PSNR (dB)", "50")),
    "jpegxl:distance": ("jpegxl (LOSSY: distance)", ("distance", "Distance", "1")),
    "webp:quality": ("webp, RGB (LOSSY: quality)", ("quality", "Quality", "90")),
    "jpeg:quality": ("jpeg (LOSSY: quality)", ("quality", "Quality", "90")),
    "zfp:rate": ("zfp (LOSSY: rate)", ("rate", "Rate (bits)", "16")),
}
_LOSSY_LABEL = "Lossy setting"
#: Encodings estimated next to the chosen one.
ALTERNATIVES = ("zstd:3", "blosc-zstd:5", "blosc-lz4:5", "gzip:6")
#: What the chunk map colours by, with the labels of the choices.
COLOR_MODES: dict[str, str] = {
    "state": "State (present / missing / corrupt)",
    "bytes": "Stored bytes",
    "ratio": "Compression ratio",
}


def shape_text(shape: Sequence[int] | None) -> str:
    """``(1, 256, 256)`` -> ``"1,256,256"``; ``""`` for None."""
    return ",".join(str(int(s)) for s in shape) if shape else ""


def parse_shape(text: str, what: str) -> tuple[int, ...] | str | None:
    """Parse a shape typed in a form: ``"1,256,256"`` (or ``1x256x256``).

    Returns None for an empty field or ``keep``, ``"none"`` for ``none``.

    Raises
    ------
    ExplorerError
        When the text is not a list of integers.
    """
    text = text.strip().lower()
    if not text or text == "keep":
        return None
    if text == "none":
        return "none"
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ExplorerError(
            f"{what} {text!r} is not a list of integers.", hint="Write e.g. 1,1,256,256."
        ) from None
    if not values:
        raise ExplorerError(f"{what} {text!r} has no numbers.", hint="Write e.g. 1,1,256,256.")
    return values


def layout_note(chunks: str, shards: str, shape: Sequence[int] | None) -> str:
    """Say how Chunks or Shards with fewer (or more) values than *shape* has dimensions apply.

    The rule is the command line's (:func:`napari_zarr_explorer.recompress.fit_shape`): the
    values go to the last axes and the leading axes get 1; extra values are left out. Returns
    ``""`` when there is nothing to say (as many values as dimensions, an empty field, text
    that is not a shape yet, or an unknown *shape*).
    """
    if not shape:
        return ""
    from napari_zarr_explorer.recompress import fit_shape

    nd = len(shape)
    parts = []
    for what, text in (("Chunks", chunks), ("Shards", shards)):
        try:
            value = parse_shape(text, what)
        except ExplorerError:
            continue
        if not isinstance(value, tuple) or len(value) == nd:
            continue
        n = len(value)
        full = shape_text(fit_shape(value, shape))
        if n < nd:
            parts.append(
                f"{what} {shape_text(value)}: {n} values for {nd}-D data apply to the last {n} "
                f"axes, and the first {nd - n} get 1 ({full})."
            )
        else:
            parts.append(
                f"{what} {shape_text(value)}: {n} values for {nd}-D data; the first {n - nd} "
                f"{'is' if n - nd == 1 else 'are'} left out ({full})."
            )
    return " ".join(parts)


def _placeholder(widget: Widget, text: str) -> None:
    """Grey hint text in an empty line edit, for whichever backend draws it."""
    native: Any = widget.native
    if hasattr(native, "setPlaceholderText"):  # Qt
        native.setPlaceholderText(text)
    elif hasattr(native, "placeholder"):  # ipywidgets
        native.placeholder = text


def _row(widgets: Sequence[Widget], label: str = "") -> Container[Widget]:
    """Widgets side by side, without labels or margins of their own (one line of a form)."""
    row: Container[Widget] = Container(
        widgets=list(widgets), layout="horizontal", labels=False, label=label
    )
    row.margins = (0, 0, 0, 0)
    return row


class Form(Container[Widget]):
    """A magicgui container that tells the user's edits from the program's.

    Parameters
    ----------
    widgets
        The fields and rows of the form.
    **kwargs
        Passed to :class:`magicgui.widgets.Container`.
    """

    def __init__(self, widgets: Sequence[Widget], **kwargs: Any) -> None:
        super().__init__(widgets=widgets, **kwargs)
        self.edited: set[str] = set()
        """Names of the fields the user changed."""
        self._quiet = 0
        for widget in self._fields():
            widget.changed.connect(self._marker(widget.name))

    def _fields(self) -> Iterator[ValueWidget[Any]]:
        def walk(container: Container[Widget]) -> Iterator[ValueWidget[Any]]:
            for widget in container:
                if isinstance(widget, Container):
                    yield from walk(widget)
                elif isinstance(widget, ValueWidget) and not isinstance(widget, PushButton):
                    yield widget

        return walk(self)

    def field(self, name: str) -> ValueWidget[Any]:
        """Return the field called *name* (also inside rows)."""
        for widget in self._fields():
            if widget.name == name:
                return widget
        raise KeyError(name)

    def _marker(self, name: str) -> Any:
        def mark(*_: Any) -> None:
            if not self._quiet:
                self.edited.add(name)

        return mark

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        """Make the changes inside this block count as the program's, not the user's."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def put(self, **values: Any) -> None:
        """Set fields as the program (they still count as not edited)."""
        with self.quietly():
            for name, value in values.items():
                self.field(name).value = value

    def suggest(self, **values: Any) -> None:
        """Set the fields the user has not edited; leave the user's own values alone."""
        self.put(**{k: v for k, v in values.items() if k not in self.edited})

    def forget(self, *names: str) -> None:
        """Treat *names* (all fields when empty) as not edited again."""
        if names:
            self.edited.difference_update(names)
        else:
            self.edited.clear()


class OpenForm(Form):
    """The Explorer's open box: a path or URL, and the Open button."""

    def __init__(self) -> None:
        self.location = LineEdit(
            name="location",
            label="Store",
            tooltip="Path or URL of a Zarr / OME-Zarr store (http(s)://, s3://, gs://)",
        )
        self.open_button = PushButton(name="open_button", text="Open")
        self.open_button.tooltip = "Show the store's hierarchy"
        super().__init__([self.location, self.open_button], layout="horizontal", labels=False)
        self.margins = (0, 0, 0, 0)
        _placeholder(self.location, "Path or URL of a .zarr store")


class CodecForm(Form):
    """A form with the codec choices every writing dock offers (Recompress, Save).

    One list of choices (:data:`CODECS`, :data:`COMPRESSORS`), one set of rules (which fields
    apply to which codec) and one set of messages for every form that writes data. A subclass
    puts :meth:`_codec_rows` among its widgets and calls :meth:`_connect_codec` once built.

    Attributes
    ----------
    codec, lossy_value, lossy_name, compressor, level, shuffle
        The fields.
    """

    codec: ComboBox
    lossy_value: LineEdit
    lossy_name: Label
    compressor: ComboBox
    level: SpinBox
    shuffle: ComboBox

    def _codec_rows(self) -> list[Widget]:
        """Create the codec fields; return the rows to place in the form."""
        self.codec = ComboBox(
            name="codec",
            label="Codec",
            choices=[(label, key) for key, (label, _) in CODECS.items()],
            value="",
            tooltip="Filters before the compressor, or an image / array codec instead of it; "
            "LOSSY ones change the values within the setting below",
        )
        self.lossy_value = LineEdit(
            name="lossy_value",
            tooltip="The error a lossy codec may make (or its quality); verification checks "
            "the values within it where the codec declares a bound",
        )
        # what the setting is: a label of its own, since renaming a form label at run time
        # measures text with magicgui's default backend, which need not be the form's
        self.lossy_name = Label(name="lossy_name", value="")
        lossy_row = _row([self.lossy_value, self.lossy_name], _LOSSY_LABEL)
        self.compressor = ComboBox(
            name="compressor", label="Compressor", choices=list(COMPRESSORS), value="zstd"
        )
        self.level = SpinBox(
            name="level", label="Level", min=1, max=22, value=3, tooltip="Compression level"
        )
        self.shuffle = ComboBox(
            name="shuffle",
            label="Shuffle",
            choices=[
                ("auto", "auto"),
                ("no shuffle", "none"),
                ("byte shuffle", "byte"),
                ("bit shuffle", "bit"),
            ],
            value="auto",
            tooltip="Blosc shuffle (auto: byte, or bit for 1-byte data)",
        )
        return [self.codec, lossy_row, self.compressor, self.level, self.shuffle]

    def _connect_codec(self) -> None:
        """Make the fields follow the codec and compressor chosen (call once, after building)."""
        self.compressor.changed.connect(self._on_compressor)
        self.codec.changed.connect(self._on_codec)
        self._on_codec()
        self._on_compressor()

    @property
    def replaces_compressor(self) -> bool:
        """True when the chosen codec encodes the array itself (png, zfp...): no compressor."""
        from napari_zarr_explorer.codec_spec import IMAGE_NAMES

        name = str(self.codec.value).partition(":")[0]
        return name in IMAGE_NAMES or name in ("zfp", "zfpy")

    def _on_codec(self, *_: Any) -> None:
        lossy = CODECS[str(self.codec.value)][1]
        with self.quietly():
            self.lossy_value.enabled = lossy is not None
            self.lossy_name.value = lossy[1] if lossy is not None else "(lossless)"
            self.lossy_value.value = lossy[2] if lossy is not None else ""
            own = not self.replaces_compressor
            self.compressor.enabled = own
        self.edited.discard("lossy_value")
        self._on_compressor()

    def _on_compressor(self, *_: Any) -> None:
        levels, shuffles = COMPRESSORS[str(self.compressor.value)]
        own = not self.replaces_compressor
        with self.quietly():
            self.level.enabled = levels is not None and own
            if levels is not None:
                self.level.min, self.level.max = levels[0], levels[1]
                self.level.value = levels[2]
            self.shuffle.enabled = shuffles and own
        self.edited.discard("level")

    def compressor_text(self) -> str:
        """Return the chosen encoding as a codec spec (``"zstd:5"``, ``"lerc:maxerror=0.01"``).

        Raises
        ------
        ExplorerError
            When a lossy codec is chosen without a number for its setting.
        """
        name = str(self.compressor.value)
        levels, _ = COMPRESSORS[name]
        main = f"{name}:{self.level.value}" if levels is not None else name
        codec = str(self.codec.value)
        if not codec:
            return main
        lossy = CODECS[codec][1]
        part = codec
        if lossy is not None:
            value = str(self.lossy_value.value).strip()
            try:
                float(value)
            except ValueError:
                raise ExplorerError(
                    f"{lossy[1]} {value!r} is not a number.",
                    hint=f"{CODECS[codec][0]} needs its setting, e.g. {lossy[2]}.",
                ) from None
            part = f"{codec}={value}"
        return part if self.replaces_compressor else f"{part}+{main}"

    def shuffle_value(self) -> str | None:
        """Return the chosen blosc shuffle, or None for automatic."""
        value = str(self.shuffle.value)
        return None if value == "auto" or not self.shuffle.enabled else value

    def set_compressor(self, text: str) -> None:
        """Choose an encoding given as a codec spec (as the user would).

        ``"zstd:5"``, ``"shuffle+blosc-lz4:5"``, ``"lerc:maxerror=0.01"``: whatever
        :func:`napari_zarr_explorer.codec_spec.parse_compressor` reads and this form offers.
        """
        from napari_zarr_explorer.codec_spec import parse_compressor

        spec = parse_compressor(text)
        codec = ""
        value: Any = None
        if spec.lossy is not None:
            opts = dict(spec.lossy_options)
            if spec.lossy in ("zfp", "zfpy") and opts.get("reversible"):
                codec = "zfp:reversible" if spec.lossy == "zfp" else "zfpy"
            elif not opts:
                codec = spec.lossy
            else:
                key, value = next(iter(opts.items()))
                codec = f"{spec.lossy}:{key}"
        elif spec.filters:
            codec = "+".join(spec.filters)
        if codec not in CODECS or (spec.lossy and spec.filters) or len(spec.lossy_options) > 1:
            raise ValueError(f"the form does not offer {text!r}")
        self.codec.value = codec
        if value is not None:
            self.lossy_value.value = str(value)
        if not self.replaces_compressor:
            self.compressor.value = spec.name
            if spec.level is not None:
                self.level.value = int(spec.level)
            if spec.shuffle is not None and spec.is_blosc:
                self.shuffle.value = spec.shuffle


class RecompressForm(CodecForm):
    """Recompress and estimate options, and the Estimate / Recompress / Cancel buttons.

    Attributes
    ----------
    output, compressor, level, shuffle, chunks, shards, zarr_format, verify, overwrite, resume,
    sample
        The fields. Shards follow Chunks (:meth:`follow_chunks`) until the user types Shards,
        and are empty and disabled while Zarr v2 is chosen.
    layout_note
        A note under Chunks and Shards saying how fewer (or more) values than the source has
        dimensions apply (:func:`layout_note`); hidden when there is nothing to say.
    estimate_button, run_button, cancel_button
        The buttons (the view connects them).
    """

    def __init__(self) -> None:
        self.output = LineEdit(
            name="output",
            label="Output",
            tooltip="New .zarr folder (or s3://, gs:// URL); never inside the source store",
        )
        codec_rows = self._codec_rows()
        self.chunks = LineEdit(
            name="chunks",
            label="Chunks",
            tooltip="Chunk shape for the full rank, e.g. 1,1,256,256 (clipped to each level); "
            "empty keeps the source's",
        )
        self.shards = LineEdit(
            name="shards",
            label="Shards",
            tooltip="Shard shape (Zarr v3), e.g. 1,1,2048,2048; 'none' for no shards; "
            "empty keeps the source's",
        )
        # how values fewer (or more) than the dimensions apply; shown only when they are
        self.layout_note = Label(name="layout_note", value="")
        self._note_row = _row([self.layout_note])  # a row of its own: no label beside it
        self._note_row.visible = False
        self.zarr_format = ComboBox(
            name="zarr_format",
            label="Format",
            choices=[("Zarr v3 (OME 0.5)", 3), ("Zarr v2 (OME 0.4)", 2)],
            value=3,
        )
        self.verify = CheckBox(
            name="verify",
            text="Verify",
            value=True,
            tooltip="Read every written shard back and compare it with the source",
        )
        self.overwrite = CheckBox(
            name="overwrite", text="Overwrite", tooltip="Delete an existing output first"
        )
        self.resume = CheckBox(
            name="resume", text="Resume", tooltip="Continue an interrupted run into the output"
        )
        options = _row([self.verify, self.overwrite, self.resume])
        self.sample = SpinBox(
            name="sample",
            label="Sample",
            min=1,
            max=1000,
            value=16,
            tooltip="How many chunks the estimate encodes with each compressor",
        )
        self.estimate_button = PushButton(name="estimate_button", text="Estimate")
        self.estimate_button.tooltip = (
            "Encode a sample of chunks with this and other compressors; nothing is written"
        )
        self.run_button = PushButton(name="run_button", text="Recompress")
        self.cancel_button = PushButton(name="cancel_button", text="Cancel")
        self.cancel_button.enabled = False
        buttons = _row([self.estimate_button, self.run_button, self.cancel_button])
        super().__init__(
            [
                self.output,
                *codec_rows,
                self.chunks,
                self.shards,
                self._note_row,
                self.zarr_format,
                options,
                self.sample,
                buttons,
            ]
        )
        self.margins = (0, 0, 0, 0)
        _placeholder(self.output, "new .zarr folder")
        _placeholder(self.chunks, "keep")
        _placeholder(self.shards, "keep")
        self.source_shape: tuple[int, ...] | None = None
        """The shape of the source (level 0 of a pyramid), when known: what shards are
        suggested for, and what the chunk and shard values are explained against."""
        # the Shards shown while Zarr v3 was chosen, and whether the user typed them
        self._v3_shards: tuple[str, bool] | None = None
        self._connect_codec()
        self.zarr_format.changed.connect(self._on_format)
        self.chunks.changed.connect(self.follow_chunks)
        self.shards.changed.connect(self._show_note)

    def set_source_shape(self, shape: Sequence[int] | None) -> None:
        """Use *shape* for the suggested shards and the notes; suggest shards again."""
        self.source_shape = tuple(int(n) for n in shape) if shape else None
        self.follow_chunks()

    def suggested_shards(self) -> str | None:
        """Return the Shards that go with the Chunks shown, or None while they are not a shape.

        Empty Chunks keep the source's chunks, and empty Shards then keep its sharding too;
        chunks typed get shards made of whole chunks (for imaging data, as
        :func:`napari_zarr_explorer.recompress.suggest_shards`). Zarr v2 has no shards.
        """
        if self.zarr_format.value != 3:
            return ""
        try:
            chunks = parse_shape(str(self.chunks.value), "Chunks")
        except ExplorerError:
            return None  # being typed: leave the shards as they are
        if not isinstance(chunks, tuple) or not self.source_shape:
            return ""
        from napari_zarr_explorer.recompress import suggest_shards

        return shape_text(suggest_shards(self.source_shape, chunks))

    def follow_chunks(self, *_: Any) -> None:
        """Make Shards follow Chunks, unless the user typed Shards; explain the values."""
        if "shards" not in self.edited:
            shards = self.suggested_shards()
            if shards is not None and shards != str(self.shards.value):
                self.put(shards=shards)
        self._show_note()

    def _show_note(self, *_: Any) -> None:
        shards = str(self.shards.value) if self.zarr_format.value == 3 else ""
        text = layout_note(str(self.chunks.value), shards, self.source_shape)
        with self.quietly():
            self.layout_note.value = text
        self._note_row.visible = bool(text)

    def _on_format(self, *_: Any) -> None:
        """Zarr v2 shows no shards (it has none); back in v3 they return.

        Shards the user typed come back as typed; suggested ones follow the chunks shown then.
        """
        v3 = self.zarr_format.value == 3
        self.shards.enabled = v3
        if not v3:
            if self._v3_shards is None:
                self._v3_shards = (str(self.shards.value), "shards" in self.edited)
            self.put(shards="")
            self.edited.discard("shards")
            _placeholder(self.shards, "none in Zarr v2")
        else:
            _placeholder(self.shards, "keep")
            kept, typed = self._v3_shards or ("", False)
            self._v3_shards = None
            if typed:
                self.put(shards=kept)
                self.edited.add("shards")
            self.follow_chunks()
        self._show_note()

    # ------------------------------------------------------------------ reading the choices
    def layout_args(self) -> tuple[Any, Any]:
        """``(chunks, shards)`` for the core: shapes, None to keep, ``"none"`` for no shards.

        Raises
        ------
        ExplorerError
            When a shape is not a list of integers.
        """
        chunks = parse_shape(str(self.chunks.value), "Chunks")
        shards: Any = (
            parse_shape(str(self.shards.value), "Shards") if self.zarr_format.value == 3 else "none"
        )
        return (None if chunks == "none" else chunks), shards

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`napari_zarr_explorer.recompress.recompress`."""
        chunks, shards = self.layout_args()
        return {
            "compressor": self.compressor_text(),
            "shuffle": self.shuffle_value(),
            "chunks": chunks,
            "shards": shards,
            "zarr_format": int(self.zarr_format.value),
            "verify": bool(self.verify.value),
            "overwrite": bool(self.overwrite.value),
            "resume": bool(self.resume.value),
        }

    def plan_kwargs(self) -> dict[str, Any]:
        """Return the run's settings that shape its plan (what a whole-run estimate needs)."""
        keys = ("compressor", "shuffle", "chunks", "shards", "zarr_format")
        return {k: v for k, v in self.run_kwargs().items() if k in keys}

    def candidates(self) -> list[dict[str, Any]]:
        """Estimate candidates: the chosen encoding first, then :data:`ALTERNATIVES`."""
        chunks, shards = self.layout_args()
        chosen = self.compressor_text()
        shuffle = self.shuffle_value()
        names = [chosen] + [c for c in ALTERNATIVES if c != chosen]
        return [
            {
                "compressor": c,
                "shuffle": shuffle if c == chosen else None,
                "chunks": chunks,
                "shards": shards,
            }
            for c in names
        ]


class ChunkMapForm(Form):
    """Chunk map controls: level, colour mode, grid lines, verification, Map and Cancel."""

    def __init__(self) -> None:
        self.level = ComboBox(
            name="level", label="Level", choices=[], tooltip="Pyramid level whose chunks are shown"
        )
        self.mode = ComboBox(
            name="mode",
            label="Colour by",
            choices=[(label, mode) for mode, label in COLOR_MODES.items()],
            value="state",
        )
        self.chunk_lines = CheckBox(name="chunk_lines", text="Chunk grid", value=True)
        self.shard_lines = CheckBox(name="shard_lines", text="Shard grid", value=True)
        self.verify = CheckBox(
            name="verify",
            text="Verify",
            tooltip="Decode every stored chunk to find corrupt ones (slower)",
        )
        toggles = _row([self.chunk_lines, self.shard_lines, self.verify])
        self.compute_button = PushButton(name="compute_button", text="Map chunks")
        self.compute_button.tooltip = "Compute the chunk map of the selected layer and level"
        self.cancel_button = PushButton(name="cancel_button", text="Cancel")
        self.cancel_button.enabled = False
        buttons = _row([self.compute_button, self.cancel_button])
        super().__init__([self.level, self.mode, toggles, buttons])
        self.margins = (0, 0, 0, 0)

    def set_levels(self, paths: Sequence[str]) -> None:
        """Offer the pyramid levels at *paths* and select level 0 (as the program)."""
        with self.quietly():
            self.level.choices = [(f"{i}: {p or '/'}", i) for i, p in enumerate(paths)]
            if paths:
                self.level.value = 0
        self.edited.discard("level")


def note(text: str = "") -> Label:
    """Return a label widget for either backend."""
    return Label(value=text)
