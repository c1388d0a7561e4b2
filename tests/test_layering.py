"""Only the store layer opens zarr arrays, reads store bytes or decodes chunks.

An AST scan of the package: every module outside ``napari_zarr_explorer/store/`` must go
through the store layer, so that the rules for hostile data (checked metadata, confined keys,
bounded reads, guarded decoding) hold at one place.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_zarr_explorer"
STORE = PACKAGE / "store"

# zarr functions that open arrays or groups from metadata zarr reads itself
_OPENERS = frozenset(
    {"open", "open_array", "open_group", "open_consolidated", "open_like", "from_dict"}
)
# decoding primitives: a codec's decode, zarr's codec-level decode, raw decompressors
_DECODERS = frozenset(
    {"decode", "_decode_single", "_decode_partial_single", "decode_partial", "decompress"}
)

# (module relative to the package, what) -> why it is allowed
ALLOWED: dict[tuple[str, str], str] = {
    # testing writes fresh example stores with zarr-python; it never reads untrusted data
    ("testing.py", "zarr.open_group"): "writes test fixtures",
    # CompressorSpec.decode decodes through store.decode_bounded (bounded by the chunk size)
    ("codec_spec.py", "self.decode"): "round trip of the spec's own encoding",
    ("estimate.py", "spec.decode"): "CompressorSpec.decode is bounded",
    ("recompress/_task.py", "spec.decode"): "CompressorSpec.decode is bounded",
    # looks the zfp codec up in numcodecs' registry to register it; decodes nothing
    ("codec_spec.py", "numcodecs.get_codec"): "codec registration",
}


def _dotted(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _violations(source: str, rel: str) -> list[str]:
    tree = ast.parse(source, filename=rel)
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        if (rel, what) not in ALLOWED:
            found.append(f"{rel}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("zarr"):
            for alias in node.names:
                if alias.name in _OPENERS or alias.name in ("AsyncArray", "Array"):
                    report(node, f"from {node.module} import {alias.name}")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        dotted = _dotted(node.func)
        root = dotted.split(".", 1)[0]
        reads = name == "get" and any(k.arg in ("prototype", "byte_range") for k in node.keywords)
        if (
            (name in _OPENERS and (root == "zarr" or "Array" in dotted))
            or name in ("get_partial_values", "get_bytes", "get_codec")
            or reads
        ):
            report(node, dotted)
        elif name in _DECODERS:
            first = node.args[0] if node.args else None
            text = first is None or (
                isinstance(first, ast.Constant) and isinstance(first.value, str)
            )
            if not text:  # bytes.decode("utf-8") is text, anything with a buffer is a codec
                report(node, dotted)
    return found


def test_only_the_store_layer_opens_reads_and_decodes():
    files = [p for p in sorted(PACKAGE.rglob("*.py")) if STORE not in p.parents]
    assert files
    found = [
        v for p in files for v in _violations(p.read_text(), p.relative_to(PACKAGE).as_posix())
    ]
    assert found == [], "\n".join(found)


def test_the_scan_sees_what_it_forbids():
    # each forbidden form is reported (a scan that sees nothing would prove nothing)
    code = (
        "import zarr\n"
        "from zarr import open_group\n"
        "def f(store, codec, buf, p):\n"
        "    zarr.open_array(store)\n"
        "    zarr.Array.open(store)\n"
        "    store.get('k', prototype=p)\n"
        "    store.get_partial_values(p, [])\n"
        "    codec.decode(buf)\n"
        "    b'x'.decode('utf-8')\n"
        "    {}.get('k')\n"
    )
    found = _violations(code, "probe.py")
    assert [f.split(": ", 1)[1] for f in found] == [
        "from zarr import open_group",
        "zarr.open_array",
        "zarr.Array.open",
        "store.get",
        "store.get_partial_values",
        "codec.decode",
    ]
