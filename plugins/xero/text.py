"""Text a warehouse cannot store: NUL characters and lone UTF-16 surrogates in Xero's JSON.

Xero's JSON may carry a NUL (``\\u0000``) or an escaped lone surrogate (``\\ud800`` without its pair, which a
.NET string can hold) inside a string, say a contact's name. Neither is a character a warehouse text column
takes: PostgreSQL text refuses NUL, no UTF-8 text holds a surrogate, and msgspec (like DuckDB's JSON type)
refuses to decode a lone surrogate at all. This module owns the two halves of the answer:

* **the JSON text is kept exactly**: :func:`mask_lone_surrogates` replaces each escaped lone surrogate by the
  escape of a private-use character that occurs nowhere else in the document (the same length, so every
  offset stays put), which any JSON decoder reads; :meth:`Masked.restore` puts the original escapes back into
  any text cut from the masked document (a record's ``_raw``). A NUL escape is valid JSON and needs no mask.
* **typed text is cleaned**: :func:`clean_text_array` removes NUL characters and turns the placeholder
  characters back into U+FFFD (the replacement character), counting the values it changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: A JSON backslash escape that matters here: an escaped backslash (skipped, so ``\\\\ud800`` is text), a
#: valid surrogate pair (kept), or a lone high or low surrogate (group ``lone``).
_ESCAPE = re.compile(
    rb"\\(?:\\|u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|(?P<lone>u[dD][89a-fA-F][0-9a-fA-F]{2}))"
)
#: Cheap test for a document that may hold a lone surrogate escape.
_MAYBE = re.compile(rb"\\u[dD][89a-fA-F]")
#: Private-use characters (U+E000..U+F8FF) stand in for lone surrogates while a document is decoded.
_PLACEHOLDERS = range(0xE000, 0xF900)
REPLACEMENT = "\ufffd"
NUL = "\x00"


@dataclass(frozen=True)
class Masked:
    """A JSON document whose lone surrogate escapes stand masked by private-use characters.

    :param data: the document to decode: the original with each lone surrogate escape replaced.
    :param originals: placeholder escape (``\\ue000`` as bytes) → the original escape it replaced.
    """

    data: bytes
    originals: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def placeholders(self) -> dict[str, str]:
        """Return each placeholder character and what typed text shows instead (U+FFFD)."""
        return {chr(int(escape[2:], 16)): REPLACEMENT for escape in self.originals}

    def restore(self, texts: pa.Array) -> pa.Array:
        """Return the JSON ``texts`` (cut from :attr:`data`) with the original escapes back in place."""
        for placeholder, original in self.originals.items():
            texts = pc.replace_substring(texts, placeholder.decode(), original.decode())
        return texts


def mask_lone_surrogates(data: bytes) -> Masked:
    """Return ``data`` with every escaped lone surrogate masked (see :class:`Masked`); usually ``data`` itself.

    Scanning costs a few milliseconds a megabyte: call it only on a document msgspec refused.

    Each lone surrogate escape gets a placeholder of its own (the same original escape text shares one),
    chosen among the private-use characters that the document holds neither as an escape nor as a
    character, so restoring is exact.

    :raises ValueError: when the document holds more distinct lone surrogates than there are free
        placeholders (about 6,400).
    """
    if data.find(b"\\") < 0 or not _MAYBE.search(data):
        return Masked(data)
    originals: dict[bytes, bytes] = {}
    by_original: dict[bytes, bytes] = {}
    free = iter(_PLACEHOLDERS)
    lowered = data.lower()

    def placeholder() -> bytes:
        for code in free:
            escape = f"\\u{code:04x}".encode()
            if escape not in lowered and chr(code).encode() not in data:
                return escape
        raise ValueError("too many distinct lone surrogates in one JSON document to mask them")

    def replace(match: re.Match[bytes]) -> bytes:
        if match.group("lone") is None:
            return match.group(0)
        original = match.group(0)
        escape = by_original.get(original)
        if escape is None:
            escape = by_original[original] = placeholder()
            originals[escape] = original
        return escape

    masked = _ESCAPE.sub(replace, data)
    return Masked(masked, originals) if originals else Masked(data)


def offset_in(raw: msgspec.Raw, source: bytes) -> int:
    """Return where ``raw`` starts in ``source``, the bytes it was decoded from (msgspec decodes it as a view).

    :raises ValueError: when ``raw`` is not a view into ``source``.
    """

    def address(buffer: bytes | msgspec.Raw) -> int:
        return int(np.frombuffer(buffer, dtype=np.uint8).__array_interface__["data"][0]) if len(buffer) else 0

    offset = address(raw) - address(source)
    if not 0 <= offset <= len(source) - len(raw) or source[offset : offset + len(raw)] != bytes(raw):
        raise ValueError("the JSON text is not a view into the document it was decoded from")
    return offset


class LenientDecoder:
    """Decode like ``decoder``, reading a document with escaped lone surrogates masked (see :class:`Masked`).

    ``raw_field`` names a :class:`msgspec.Raw` attribute of the decoded value that must hold the original
    text: it is cut from the original document at the place it took in the masked one (same offsets).
    """

    def __init__(self, decoder: msgspec.json.Decoder[Any], raw_field: str) -> None:
        self.decoder = decoder
        self.raw_field = raw_field

    def decode(self, data: bytes) -> Any:
        """Return ``data`` decoded; raise as ``decoder`` does when masking does not help."""
        try:
            return self.decoder.decode(data)
        except msgspec.DecodeError:
            masked = mask_lone_surrogates(data)
            if not masked.originals:
                raise
        value = self.decoder.decode(masked.data)
        raw = getattr(value, self.raw_field, None)
        if isinstance(raw, msgspec.Raw) and len(raw):
            start = offset_in(raw, masked.data)
            setattr(value, self.raw_field, msgspec.Raw(data[start : start + len(raw)]))
        return value


def decode_masked(decoder: msgspec.json.Decoder[Any], data: bytes) -> Any:
    """Return ``data`` decoded by ``decoder``, with escaped lone surrogates masked if it holds any."""
    try:
        return decoder.decode(data)
    except msgspec.DecodeError:
        masked = mask_lone_surrogates(data)
        if not masked.originals:
            raise
        return decoder.decode(masked.data)


def clean_text_array(values: pa.Array, placeholders: dict[str, str] | None = None) -> tuple[pa.Array, int]:
    """Return string ``values`` without NUL characters and with placeholders shown as U+FFFD, and how many changed.

    :param values: an Arrow string array of typed values.
    :param placeholders: placeholder character → replacement (:attr:`Masked.placeholders`).
    """
    patterns = [NUL, *(placeholders or {})]
    hits: pa.Array | None = None
    for pattern in patterns:
        found = pc.match_substring(values, pattern)
        hits = found if hits is None else pc.or_(hits, found)
    if hits is None or not pc.any(hits).as_py():
        return values, 0
    cleaned = pc.replace_substring(values, NUL, "")
    for placeholder, replacement in (placeholders or {}).items():
        cleaned = pc.replace_substring(cleaned, placeholder, replacement)
    return cleaned, int(pc.sum(pc.cast(pc.fill_null(hits, False), pa.int64())).as_py())


__all__ = [
    "NUL",
    "REPLACEMENT",
    "LenientDecoder",
    "Masked",
    "clean_text_array",
    "decode_masked",
    "mask_lone_surrogates",
    "offset_in",
]
