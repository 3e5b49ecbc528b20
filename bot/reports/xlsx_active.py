"""Choose the sheet an .xlsx workbook opens on, after it is written.

rustpy-xlsxwriter has no call for it (rust_xlsxwriter's ``set_active`` is not exposed):
its workbooks open on the first sheet, which has ``tabSelected`` in its sheet view, and
``workbook.xml`` names no ``activeTab``. The regulator's workbook keeps the roster first
(``zicha roster import`` reads the first sheet) but opens on the institutions.

``set_active_sheet`` does what XlsxWriter's ``activate()`` writes: ``activeTab`` in the
workbook view, ``tabSelected`` on that sheet only (the writer already set it there,
``sheet_view={"selected": True}``) and not on the first (two selected tabs would open
grouped, and an edit would go to both). Only ``xl/workbook.xml`` and the first sheet's XML
change. Every other member is copied byte for byte, compressed data and all, with the
central directory's offsets moved, so a national workbook is not inflated and deflated
again: the first sheet (the roster) is re-deflated as a stream, in constant memory.

Only what the writer produces is handled: one disk, no ZIP64, no archive comment; anything
else raises ``ValueError`` rather than writing a damaged file.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory file header (46 bytes)
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header (30 bytes)
_END = struct.Struct("<IHHHHIIH")  # end of central directory record (22 bytes)
_CENTRAL_SIG, _LOCAL_SIG, _END_SIG, _DESCRIPTOR_SIG = 0x02014B50, 0x04034B50, 0x06054B50, 0x08074B50
_WORKBOOK = "xl/workbook.xml"
_FIRST_SHEET = "xl/worksheets/sheet1.xml"
_CHUNK = 1 << 20
_INFLATE_CHUNK = 1 << 16
_HEAD = 1 << 16  # bytes of XML read before editing: the views are in the first kilobyte


def set_active_sheet(path: str | os.PathLike[str], index: int) -> None:
    """Make sheet ``index`` (0-based; its sheet view must already be ``tabSelected``) the
    one ``path`` opens on. Index 0 is what the writer already does: nothing changes."""
    if index == 0:
        return
    path = Path(path)
    out = path.with_name(path.name + ".active")
    try:
        with path.open("rb") as src, out.open("wb") as dst:
            _rewrite(src, dst, index)
        os.replace(out, path)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _rewrite(src: BinaryIO, dst: BinaryIO, index: int) -> None:
    src.seek(0, os.SEEK_END)
    size = src.tell()
    src.seek(size - _END.size)
    end = _END.unpack(src.read(_END.size))
    sig, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment = end
    if sig != _END_SIG or disk or cd_disk or n_disk != n_total or comment or cd_offset == 0xFFFFFFFF:
        raise ValueError("not a single-disk ZIP archive without comment or ZIP64")
    src.seek(cd_offset)
    directory = src.read(cd_size)
    records: list[bytes] = []
    pos = 0
    seen: set[str] = set()
    for _ in range(n_total):
        fields = list(_CENTRAL.unpack_from(directory, pos))
        name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
        length = _CENTRAL.size + name_len + extra_len + comment_len
        if fields[0] != _CENTRAL_SIG or 0xFFFFFFFF in (fields[8], fields[9], fields[16]):
            raise ValueError("unexpected central directory entry (ZIP64?)")
        tail = directory[pos + _CENTRAL.size : pos + length]
        name = tail[:name_len].decode("utf-8")
        pos += length
        offset = dst.tell()
        if name == _WORKBOOK:
            crc, csize, usize = _deflate_member(src, dst, fields, name, lambda head: _activate(head, index))
        elif name == _FIRST_SHEET:
            crc, csize, usize = _deflate_member(src, dst, fields, name, _unselect)
        else:
            _copy_member(src, dst, fields)
            records.append(_CENTRAL.pack(*fields[:16], offset) + tail)
            continue
        seen.add(name)
        fields[3] &= ~0x08  # sizes are in the local header now, no data descriptor
        fields[4] = zlib.DEFLATED
        fields[7], fields[8], fields[9] = crc, csize, usize
        records.append(_CENTRAL.pack(*fields[:16], offset) + tail)
    if seen != {_WORKBOOK, _FIRST_SHEET}:
        raise ValueError(f"no {', '.join(sorted({_WORKBOOK, _FIRST_SHEET} - seen))} in the workbook")
    start = dst.tell()
    for record in records:
        dst.write(record)
    dst.write(_END.pack(_END_SIG, 0, 0, len(records), len(records), dst.tell() - start, start, 0))


def _copy_member(src: BinaryIO, dst: BinaryIO, central: list[int]) -> None:
    """Copy one member's local header, data and data descriptor as they are."""
    src.seek(central[16])
    header = src.read(_LOCAL.size)
    local = _LOCAL.unpack(header)
    if local[0] != _LOCAL_SIG:
        raise ValueError("bad local file header")
    length = local[9] + local[10] + central[8]  # name, extra, compressed data
    if central[3] & 0x08:  # a data descriptor follows: signature (optional), CRC, sizes
        src.seek(central[16] + _LOCAL.size + length)
        length += 16 if struct.unpack("<I", src.read(4))[0] == _DESCRIPTOR_SIG else 12
        src.seek(central[16] + _LOCAL.size)
    dst.write(header)
    while length:
        chunk = src.read(min(length, _CHUNK))
        if not chunk:
            raise ValueError("truncated member")
        dst.write(chunk)
        length -= len(chunk)


def _deflate_member(
    src: BinaryIO, dst: BinaryIO, central: list[int], name: str, edit: Callable[[bytes], bytes]
) -> tuple[int, int, int]:
    """Write the member anew: its XML with ``edit`` applied to the head (where the
    workbook view and the sheet view are), deflated as a stream. Returns (CRC, sizes)."""
    if central[4] != zlib.DEFLATED:
        raise ValueError(f"{name} is not deflated")
    src.seek(central[16])
    local = _LOCAL.unpack(src.read(_LOCAL.size))
    src.seek(central[16] + _LOCAL.size + local[9] + local[10])
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    deflate = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)  # level 1: the roster streams in a blink
    encoded = name.encode("utf-8")
    header_at = dst.tell()
    dst.write(b"\0" * (_LOCAL.size + len(encoded)))  # filled in below, once the sizes are known
    crc = usize = csize = 0
    head: bytes | None = b""  # the start of the XML, until it is long enough to edit

    def emit(data: bytes) -> None:
        nonlocal crc, usize, csize, head
        if head is not None:
            head += data
            if len(head) < _HEAD:
                return
            data, head = edit(head), None
        crc = zlib.crc32(data, crc)
        usize += len(data)
        packed = deflate.compress(data)
        csize += len(packed)
        dst.write(packed)

    remaining = central[8]
    while remaining:
        # small reads: XML deflates tenfold, and an inflated megabyte would be a spike
        raw = src.read(min(remaining, _INFLATE_CHUNK))
        if not raw:
            raise ValueError("truncated member")
        remaining -= len(raw)
        emit(inflate.decompress(raw))
    emit(inflate.flush())
    if head is not None:  # shorter than _HEAD altogether
        data, head = edit(head), None
        emit(data)
    packed = deflate.flush()
    csize += len(packed)
    dst.write(packed)
    end = dst.tell()
    dst.seek(header_at)
    flags = central[3] & ~0x08
    dst.write(
        _LOCAL.pack(_LOCAL_SIG, central[2], flags, zlib.DEFLATED, central[5], central[6], crc, csize, usize, len(encoded), 0)
    )
    dst.write(encoded)
    dst.seek(end)
    return crc, csize, usize


_WORKBOOK_VIEW = re.compile(rb"<workbookView\b")
_TAB_SELECTED = re.compile(rb'(<sheetView\b[^>]*?) tabSelected="1"')


def _activate(head: bytes, index: int) -> bytes:
    edited, count = _WORKBOOK_VIEW.subn(b'<workbookView activeTab="%d"' % index, head, count=1)
    if not count or b"activeTab=" in head:
        raise ValueError("workbook.xml has no workbook view to set the active tab on")
    return edited


def _unselect(head: bytes) -> bytes:
    edited, count = _TAB_SELECTED.subn(rb"\1", head, count=1)
    if not count:
        raise ValueError("the first sheet is not selected: nothing to unselect")
    return edited
