"""Writing a workbook's sheets with rustpy-xlsxwriter, in this process or in one of its own.

``Sheet`` is one sheet: header, widths, date columns, and an iterator of rows. The rows of
a sheet are consumed as it is written (each sheet streams: the writer keeps only the
current row on its side), one sheet after the other, so memory stays flat.

``write_sheets`` writes them here. ``write_sheets_in_child`` makes the rows here and has a
child process write them (issue 14): a national workbook is about as much work reading the
database and making rows in Python as it is turning rows into a file, and in one
interpreter the two take turns. Split, the process that reads the database keeps its one
snapshot (every sheet shows one state of the database) and makes the rows, the child takes
them in batches through a pipe and writes, each on a core of its own. The child imports
only this module and rustpy-xlsxwriter. It runs at the priority of the thread that
starts it (the bot's workbook thread: SCHED_IDLE, ``jobs.lower_priority``, so neither
process takes a core from a button press), and exits when its pipe closes, so a parent
that dies leaves nothing behind.

The child's protocol: on its stdin, length-prefixed frames (4 bytes, little-endian) of
pickles: first the sheets without their rows, then per sheet its rows in batches and an
empty frame at the sheet's end. On its stdout, one JSON line: ``{"peak_mb": ...}`` once the
file is written, or ``{"error": "..."}``. The frames are pickles of values this module's
caller made, and the child reads them only from its parent.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import rustpy_xlsxwriter as rx

DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"
BATCH_ROWS = 500  # rows per frame: a few hundred kilobytes of pickle at most


class Sheet(NamedTuple):
    """One sheet: its header, column widths, the columns that hold dates, and its rows.

    A header entry is a title, or (title, comment) for a header cell with a comment.
    ``rows`` is an iterable consumed when the workbook is written. Its values are written
    as they are: text a user or a roster typed must already be neutralised
    (``bot.reports.excel.cell_text``)."""

    title: str
    header: list[str | tuple[str, str]]
    widths: list[float]
    rows: Iterable[Sequence[object]]
    date_columns: frozenset[int] = frozenset()


class WriterFailed(RuntimeError):
    """The child process did not write the workbook."""


def _titles(sheet: Sheet) -> list[str]:
    return [entry if isinstance(entry, str) else entry[0] for entry in sheet.header]


def _records(titles: list[str], rows: Iterable[Sequence[object]]) -> Iterator[dict[str, object]]:
    """The rows as rustpy-xlsxwriter's records: dicts whose keys are the column titles.

    The writer takes the header from the first record's keys and then writes every record's
    values by position (in insertion order), so the first record carries every title (padded
    with empty cells) and a sheet without rows still gets its header (one record of empty
    cells: an empty cell is not written)."""
    it = iter(rows)
    first = next(it, None)
    padded = list(first or ())
    padded += [None] * (len(titles) - len(padded))
    yield dict(zip(titles, padded, strict=False))
    for values in it:
        yield dict(zip(titles, values, strict=False))


def write_sheets(path: str | os.PathLike[str], sheets: Sequence[Sheet]) -> None:
    """Write the sheets in order (header row bold and frozen, widths, header comments,
    date and date-time formats); the workbook opens on the first."""
    date_format = rx.Format().set_num_format(DATE_FORMAT)
    entries: list[tuple[str, Any]] = []
    widths: dict[str, list[float]] = {}
    formats: dict[str, dict[str, rx.Format]] = {}
    notes: dict[str, dict[str, str | dict[str, Any]]] = {}
    for sheet in sheets:
        titles = _titles(sheet)
        if len(set(titles)) != len(titles):  # records are dicts keyed by title: a repeat would lose a column
            raise ValueError(f"repeated column titles in sheet {sheet.title!r}")
        entries.append((sheet.title, _records(titles, sheet.rows)))
        widths[sheet.title] = sheet.widths
        if sheet.date_columns:
            formats[sheet.title] = {titles[c]: date_format for c in sheet.date_columns}
        comments: dict[str, str | dict[str, Any]] = {
            entry[0]: {"text": entry[1], "author": "Zicha", "width": 320, "height": 160}
            for entry in sheet.header
            if not isinstance(entry, str) and entry[1]
        }
        if comments:
            notes[sheet.title] = comments
    rx.write_worksheets(
        entries,
        str(path),
        freeze_panes={"general": {"row": 1, "col": 0}},
        # every date-time cell (dates have their own column format below)
        datetime_format=DATETIME_FORMAT,
        bold_headers=True,
        column_widths=dict(widths),
        column_formats=dict(formats) or None,
        notes=dict(notes) or None,
    )


def write_sheets_in_child(
    path: str | os.PathLike[str], sheets: Sequence[Sheet], meanwhile: Callable[[], object] | None = None
) -> float:
    """``write_sheets`` by a child process, the rows made here as the child writes them;
    returns the child's peak resident memory in MB. Raises ``WriterFailed`` if the child
    fails; an error making the rows stops the child and is raised as it is. Either way no
    file is left at ``path`` by a failed child.

    ``meanwhile`` is called once every row is sent, while the child finishes the file: its
    compression, after the last row, takes a second or two in which this process would
    only wait. An error there stops the child too, and is raised as it is."""
    import bot  # the child imports the same package as this process

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(bot.__file__).resolve().parents[1]), env.get("PYTHONPATH")])
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "bot.reports.xlsx_writer", os.fspath(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        try:
            _feed(child.stdin, sheets)  # an error making a row is raised from here as it is
        finally:
            # the child reads to the end: on an error here it stops there (an incomplete
            # workbook) instead of waiting for rows that will not come
            with contextlib.suppress(BrokenPipeError):
                child.stdin.close()
        if meanwhile is not None:
            meanwhile()
        reply = child.stdout.readline()
        child.wait()
    except BaseException:
        child.kill()
        child.wait()
        Path(path).unlink(missing_ok=True)
        raise
    finally:
        child.stdout.close()
    try:
        outcome = json.loads(reply)
    except ValueError:
        outcome = {"error": f"the writer exited with code {child.returncode} and no reply"}
    if child.returncode != 0 or "error" in outcome:
        Path(path).unlink(missing_ok=True)
        raise WriterFailed(str(outcome.get("error", f"the writer exited with code {child.returncode}")))
    return float(outcome["peak_mb"])


class _ChildGone(Exception):
    """The child stopped reading (it failed: its reply says why)."""


def _feed(stream: IO[bytes], sheets: Sequence[Sheet]) -> None:
    """Send the sheets, then each one's rows in batches and an empty frame at its end.
    Returns early if the child stopped reading; whatever making the rows raises (a
    ``BrokenPipeError`` of its own included) goes to the caller."""
    try:
        # plain tuples: the child runs this module as __main__, not under its name
        _send(stream, [(s.title, s.header, s.widths, s.date_columns) for s in sheets])
        for sheet in sheets:
            batch: list[Sequence[object]] = []
            for row in sheet.rows:
                batch.append(row)
                if len(batch) >= BATCH_ROWS:
                    _send(stream, batch)
                    batch = []
            if batch:
                _send(stream, batch)
            _frame(stream, b"")
    except _ChildGone:
        return


def _send(stream: IO[bytes], value: object) -> None:
    _frame(stream, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _frame(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(struct.pack("<I", len(data)))
        stream.write(data)
    except BrokenPipeError as exc:
        raise _ChildGone from exc


def _read_frame(stream: IO[bytes]) -> bytes:
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError("the parent closed the pipe before the workbook was complete")
    (size,) = struct.unpack("<I", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the parent closed the pipe before the workbook was complete")
    return data


def _child(path: str) -> int:
    """The child's side: read the sheets and their rows from stdin, write the file."""
    source = sys.stdin.buffer

    def rows() -> Iterator[Sequence[object]]:
        while frame := _read_frame(source):
            yield from pickle.loads(frame)

    try:
        sheets = [
            Sheet(title, header, widths, rows(), date_columns)
            for title, header, widths, date_columns in pickle.loads(_read_frame(source))
        ]
        write_sheets(path, sheets)
        if source.read(1):
            raise ValueError("more sheets sent than announced")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        Path(path).unlink(missing_ok=True)
        _reply({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    _reply({"peak_mb": round(memory_mb(), 1)})
    return 0


def _reply(message: dict[str, object]) -> None:
    """The child's one line to its parent. A parent that is gone (killed: its end of the
    pipe closed) is not told, and the child exits without a traceback in the log."""
    try:
        print(json.dumps(message), flush=True)
    except BrokenPipeError:
        # the line stays in stdout's buffer: point stdout at nothing so that the exit's
        # flush does not fail again (Python's documented way, signal module: SIGPIPE)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def memory_mb(key: str = "VmHWM:") -> float:
    """This process's memory figure ``key`` from Linux's /proc/self/status, in MB:
    ``VmHWM:`` its peak resident memory, ``VmRSS:`` its resident memory now (0.0 where
    there is no such file). The peak is VmHWM, not ``ru_maxrss``: Linux carries
    ``ru_maxrss`` across ``exec``, so a child would report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
