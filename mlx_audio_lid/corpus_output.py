"""A corpus run's Parquet output: a dataset folder of part files that survives a kill at any moment.

`OUT.parquet/` holds `part-000001.parquet`, `part-000002.parquet`, ... Each part is written
under a hidden temporary name, flushed to disk and renamed into place (`os.replace` is atomic),
so a kill leaves only whole parts plus at most one hidden `.part-*.tmp` file, which the next run
deletes and which Parquet readers skip (pyarrow, pandas, polars and DuckDB read the folder or
its `part-*.parquet` glob). A rerun reads the `path` column of the parts already there and does
only the rest, so every file ends up with exactly one row. One run at a time holds the folder's
`.lock` (flock: released by the kernel even when the process is killed).

Appending row groups to one file instead would leave a file without its footer, which no
reader opens, after a kill; part files need no repair step.
"""

import fcntl
import os
import re
import time
from pathlib import Path
from typing import List, Optional, Set

import pyarrow as pa
import pyarrow.parquet as pq

_LANGUAGE = [("language", pa.string()), ("code", pa.string()), ("name", pa.string()), ("probability", pa.float64())]
TOP = pa.struct(_LANGUAGE)  # one entry of `top`, as LanguagePrediction.to_dict gives it
SEGMENT = pa.struct([("start", pa.float64()), ("end", pa.float64())] + _LANGUAGE)
PART = re.compile(r"part-(\d+)\.parquet")


def schema(segments: bool = False) -> pa.Schema:
    """One row per file: the answer, or `error` (then every other column but `path` is null).

    `top` and `segments` are lists of structs: Parquet's nested types, which pyarrow, pandas
    (lists of dicts), polars, DuckDB and Spark all read as columns, unlike a JSON string.
    """
    fields = [pa.field("path", pa.string(), nullable=False), *(pa.field(n, t) for n, t in _LANGUAGE),
              pa.field("duration", pa.float64()), pa.field("speech", pa.float64()),
              pa.field("top", pa.list_(TOP)), pa.field("error", pa.string())]
    if segments:
        fields.append(pa.field("segments", pa.list_(SEGMENT)))
    return pa.schema(fields)


def row(path: Optional[str], record: Optional[dict] = None, error: Optional[str] = None) -> dict:
    """A schema row from `LanguagePrediction.to_dict()` (or an error message)."""
    return dict(record or {}, path=path, error=error)


def to_table(rows: List[dict], table_schema: pa.Schema) -> pa.Table:
    """Rows -> a table of exactly `table_schema` (keys the schema lacks are left out)."""
    return pa.Table.from_pylist(rows, schema=table_schema)


class PartWriter:
    """Buffers result rows and writes them as whole part files, every `rows_per_part` rows or
    `seconds_per_part` seconds (what a kill can lose), and on close."""

    def __init__(self, folder, table_schema: pa.Schema, rows_per_part: int = 1000, seconds_per_part: float = 60.0):
        if rows_per_part < 1:
            raise ValueError(f"rows_per_part must be at least 1, got {rows_per_part}")
        self.folder, self.schema = Path(folder), table_schema
        self.rows_per_part, self.seconds_per_part = rows_per_part, seconds_per_part
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"output {self.folder} is a file; a corpus run writes a folder of Parquet parts there")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.folder / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise ValueError(f"another run is writing to {self.folder}; wait for it or choose another --output") from None
        for stale in self.folder.glob(".part-*.tmp"):  # a part a killed run did not finish
            stale.unlink()
        self.parts = sorted(p for p in self.folder.iterdir() if PART.fullmatch(p.name))
        self._check_schema()
        self._next = max((int(PART.fullmatch(p.name)[1]) for p in self.parts), default=0) + 1
        self._pending: List[pa.Table] = []
        self._pending_rows, self._since = 0, time.monotonic()
        self.written = 0  # rows this run has written

    def _check_schema(self) -> None:
        for part in self.parts:
            found = pq.read_schema(part).remove_metadata()
            if not found.equals(self.schema):
                missing = set(self.schema.names) ^ set(found.names)
                hint = f" (columns differ: {', '.join(sorted(missing))}; was it run with --segments?)" if missing else ""
                raise ValueError(f"{part} has another schema than this run writes{hint}; use another --output")

    def done_paths(self) -> Set[str]:
        """The paths that already have a row (from earlier runs)."""
        return {p for part in self.parts for p in pq.read_table(part, columns=["path"]).column("path").to_pylist()}

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self._pending.append(table.select(self.schema.names).cast(self.schema))
            self._pending_rows += table.num_rows
        while self._pending_rows >= self.rows_per_part:
            self._write(self.rows_per_part)
        if time.monotonic() - self._since >= self.seconds_per_part:
            self.flush()

    def flush(self) -> None:
        """Write every buffered row."""
        if self._pending_rows:
            self._write(self._pending_rows)

    def _write(self, rows: int) -> None:
        """The first `rows` buffered rows -> the next part file, atomically."""
        buffered = pa.concat_tables(self._pending)
        table, rest = buffered.slice(0, rows), buffered.slice(rows)
        final = self.folder / f"part-{self._next:06d}.parquet"
        temporary = self.folder / f".{final.name}.tmp"
        with open(temporary, "wb") as sink:
            pq.write_table(table, sink)
            sink.flush()
            os.fsync(sink.fileno())  # on disk before it gets its final name
        os.replace(temporary, final)
        self.parts.append(final)
        self._next += 1
        self.written += table.num_rows
        self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
        self._since = time.monotonic()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._lock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

