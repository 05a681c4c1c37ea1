"""Scan results as a Parquet dataset (``robodetect scan --out DIR.parquet``), written by many
writers at once (the Ray workers, or the local scan's main process) with no single-writer lock.

Layout of ``DIR.parquet/``:

- ``part-<run>-<id>.parquet``: result rows, one row per ``calls`` row of the SQLite store
  (:data:`robodetect.store.CALL_COLUMNS`; ``timing`` and ``cues`` are JSON text), plus
  ``path_bytes`` (the exact file-name bytes; ``path`` is text, a non-UTF-8 name shown with
  ``\\x..`` escapes), ``windows`` (list of start/end/robot probability) and ``fingerprint`` (the
  campaign landmarks, on a file's first row only). Every part appears whole: it is written under a
  hidden temporary name and renamed, so a killed writer never leaves half a part. A part written
  again by a retried Ray task has the same name and replaces the first.
- ``_robodetect.json``: marks the folder as a robodetect result dataset (any other non-empty folder
  is refused, never written into).
- ``_index.robodetect.db``: the reading index, a regular SQLite result store built from the parts
  (incrementally: each part is read once), which ``summary``, ``export``, ``report``,
  ``campaigns`` and the scan's resume read. It is a cache: delete it and it is rebuilt.

Files whose names start with ``_`` or ``.`` are skipped by Parquet readers (pyarrow, DuckDB,
Spark), so ``pyarrow.dataset.dataset("DIR.parquet")`` reads exactly the result rows.

A file may have rows in several parts (scored again after its content changed, or a part written
twice after a retry): the index keeps, per (path, channel mode, model version), the newest
rows by ``scored_at``, and an error never replaces good rows (it goes to ``failed_retries``, as
in the SQLite store) — so no reader ever sees a duplicate.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid

from .audio import display_path
from .store import (
    CALL_COLUMNS,
    FILE_KEY,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    SCHEMA,
    FileMeta,
    StoreContext,
    StoreError,
    call_rows,
    connect,
    db_path,
    delete_file_rows,
    insert_file_rows,
    scored_hash,
)

MARKER = "_robodetect.json"
INDEX = "_index.robodetect.db"
FORMAT = "robodetect-results-parquet"
FORMAT_VERSION = 1
FLUSH_FILES = 2000  # local writer: files per part
FLUSH_SECONDS = 30.0  # local writer: at most this long between parts (a crash loses at most this)
PARQUET_HINT = "Parquet results need pyarrow: pip install 'robodetect[parquet]'"


def parquet_missing() -> str | None:
    """None when pyarrow imports, else the one-line install hint."""
    try:
        _pa()
    except StoreError as exc:
        return str(exc)
    return None


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise StoreError(PARQUET_HINT) from None
    return pa, pq


def is_dataset(path: str | os.PathLike) -> bool:
    """True for a robodetect Parquet result folder (existing, with its marker)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, MARKER))


def wants_dataset(path: str | os.PathLike) -> bool:
    """True when ``--out path`` asks for a Parquet dataset: a name ending in ``.parquet`` or an
    existing result folder."""
    return os.fspath(path).rstrip("/").endswith(".parquet") or is_dataset(path)


def create(path: str | os.PathLike) -> str:
    """Create (or reopen) a result dataset folder; refuses a foreign folder or a plain file."""
    path = os.fspath(path)
    where = display_path(path)
    _pa()
    if os.path.exists(path) and not os.path.isdir(path):
        raise StoreError(f"{where}: exists and is not a folder; a Parquet result dataset is a folder")
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, MARKER)):
        if os.listdir(path):
            raise StoreError(f"{where}: a folder that is not a robodetect result dataset; refusing to write into it")
    os.makedirs(path, exist_ok=True)
    marker = os.path.join(path, MARKER)
    if os.path.isfile(marker):
        _check_marker(path)
    else:
        tmp = os.path.join(path, f".{MARKER}.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"format": FORMAT, "version": FORMAT_VERSION}, fh)
        os.replace(tmp, marker)
    return path


def _check_marker(path: str) -> None:
    try:
        with open(os.path.join(path, MARKER), encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{display_path(path)}: unreadable {MARKER} ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise StoreError(f"{display_path(path)}: {MARKER} does not describe a robodetect result dataset")
    if int(info.get("version", 0)) > FORMAT_VERSION:
        raise StoreError(
            f"{display_path(path)}: result dataset format {info.get('version')} is newer than this robodetect's "
            f"({FORMAT_VERSION})"
        )


# ---- writing ---------------------------------------------------------------------------------
def schema():
    pa, _ = _pa()
    fields = []
    for name in CALL_COLUMNS:
        kind = pa.float64() if name in FLOAT_COLUMNS else pa.int64() if name in INT_COLUMNS else pa.string()
        fields.append(pa.field(name, kind))
    window = pa.struct(
        [("start_seconds", pa.float64()), ("end_seconds", pa.float64()), ("robot_probability", pa.float64())]
    )
    landmark = pa.struct([("hash", pa.int64()), ("t", pa.int32())])
    return pa.schema(
        fields
        + [
            pa.field("path_bytes", pa.binary()),
            pa.field("windows", pa.list_(window)),
            pa.field("fingerprint", pa.list_(landmark)),
        ]
    )


def file_records(
    path: str, channel_mode: str, model_version: str, meta: FileMeta, results: list, error: str | None
) -> list[dict]:
    """One file's rows as Parquet records (the SQLite store's rows, :func:`robodetect.store.call_rows`)."""
    records = []
    for n, (row, windows) in enumerate(call_rows(path, channel_mode, model_version, meta, results, error, time.time())):
        rec = dict(zip(CALL_COLUMNS, row, strict=True))
        rec["path"], rec["path_bytes"] = display_path(path), os.fsencode(path)
        rec["windows"] = [{"start_seconds": a, "end_seconds": b, "robot_probability": p} for a, b, p in windows]
        fp = meta.fingerprint if n == 0 and error is None else None
        rec["fingerprint"] = [] if fp is None else [{"hash": int(h), "t": int(t)} for h, t in fp]
        records.append(rec)
    return records


def part_name(run: str, paths: list[bytes]) -> str:
    """A part's name: the run and a digest of its files (a retried Ray batch gets the same name)."""
    digest = hashlib.sha1(b"\0".join(sorted(paths))).hexdigest()[:16]
    return f"part-{run}-{digest}.parquet"


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def write_part(folder: str, records: list[dict], name: str) -> str | None:
    """Write ``records`` as one part, atomically (hidden temporary name, then rename)."""
    if not records:
        return None
    pa, pq = _pa()
    table = pa.Table.from_pylist(records, schema=schema())
    final = os.path.join(folder, name)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return final


class ParquetStore(StoreContext):
    """The :class:`robodetect.store.ResultStore` interface over a result dataset.

    With the Ray engine the workers write the parts (``workers_write``) and this object only
    answers the resume lookups; with the local engine :meth:`write_file` buffers rows and a part is
    written every :data:`FLUSH_FILES` files or :data:`FLUSH_SECONDS` seconds, and at close.
    """

    workers_write = True

    def __init__(self, path: str | os.PathLike):
        self.path = create(path)
        self.run_id = new_run_id()
        self._buffer: list[dict] = []
        self._files: list[bytes] = []
        self._last_flush = time.monotonic()
        self._index: sqlite3.Connection | None = None

    def scored_hash(
        self, path: str, channel_mode: str, model_version: str, *, fingerprinted: bool = False
    ) -> str | None:
        """As :meth:`ResultStore.scored_hash`, from the index of the parts written before this run."""
        if self._index is None:
            self._index = connect(index(self.path), readonly=True)
        return scored_hash(self._index, path, channel_mode, model_version, fingerprinted=fingerprinted)

    def write_file(
        self, path: str, channel_mode: str, model_version: str, meta: FileMeta, results: list, error: str | None
    ) -> bool:
        self._buffer += file_records(path, channel_mode, model_version, meta, results, error)
        self._files.append(os.fsencode(path))
        return True

    def commit(self, force: bool = False) -> None:
        """Write the buffered files as a part when enough have gathered (or ``force``)."""
        due = len(self._files) >= FLUSH_FILES or time.monotonic() - self._last_flush >= FLUSH_SECONDS
        if self._files and (force or due):
            write_part(self.path, self._buffer, part_name(self.run_id, self._files))
            self._buffer, self._files = [], []
            self._last_flush = time.monotonic()

    def abort(self) -> None:
        self._buffer, self._files = [], []
        self.close()

    def close(self) -> None:
        self.commit(force=True)
        if self._index is not None:
            self._index.close()
            self._index = None


# ---- the reading index -----------------------------------------------------------------------
PARTS_TABLE = """
CREATE TABLE IF NOT EXISTS parquet_parts (name TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER);
CREATE TABLE IF NOT EXISTS parquet_meta (key TEXT PRIMARY KEY, value);
"""
FINGERPRINT_INDEX = next(s.strip() for s in SCHEMA.split(";") if "INDEX IF NOT EXISTS fingerprints_hash" in s)


def _index_path(folder: str) -> str:
    """The index inside the folder, or (a read-only folder) in the temporary directory."""
    inside = os.path.join(folder, INDEX)
    if os.access(folder, os.W_OK) or os.path.exists(inside) and os.access(inside, os.W_OK):
        return inside
    tag = hashlib.sha1(os.fsencode(os.path.abspath(folder))).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"robodetect-index-{tag}.db")


def _parts(folder: str) -> dict[str, tuple[int, int]]:
    out = {}
    with os.scandir(folder) as it:
        for e in it:
            if e.name.startswith("part-") and e.name.endswith(".parquet") and e.is_file():
                st = e.stat()
                out[e.name] = (st.st_size, st.st_mtime_ns)
    return out


def index(folder: str | os.PathLike) -> str:
    """Bring the folder's reading index up to date (new or rewritten parts are read; a removed
    part rebuilds it) and return its path, a SQLite result store."""
    folder = os.fspath(folder)
    if not is_dataset(folder):
        raise StoreError(f"{display_path(folder)}: not a robodetect result dataset (no {MARKER})")
    _check_marker(folder)
    path = _index_path(folder)
    parts = _parts(folder)
    conn = connect(path)
    try:
        conn.executescript(PARTS_TABLE)
        known = {n: (s, m) for n, s, m in conn.execute("SELECT name, size, mtime_ns FROM parquet_parts")}
        if set(known) - set(parts):  # a part was removed: its rows must go too
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.unlink(path + suffix)
            conn = connect(path)
            conn.executescript(PARTS_TABLE)
            known = {}
        todo = sorted(n for n, st in parts.items() if known.get(n) != st)
        if todo and conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 0:
            conn.execute("DROP INDEX IF EXISTS fingerprints_hash")  # a first build: one sort at the end
        for name in todo:
            conn.execute("BEGIN IMMEDIATE")
            try:
                _load_part(conn, os.path.join(folder, name))
                conn.execute("INSERT OR REPLACE INTO parquet_parts VALUES (?, ?, ?)", (name, *parts[name]))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        # shared_hashes for the calls loaded since the last refresh (kept in parquet_meta, so a refresh
        # interrupted between the parts and this step is completed by the next one)
        done = conn.execute("SELECT value FROM parquet_meta WHERE key = 'shared_upto'").fetchone()
        upto = conn.execute("SELECT coalesce(max(id), 0) FROM calls").fetchone()[0]
        if upto > (done[0] if done else 0):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(FINGERPRINT_INDEX)
            conn.execute(
                "INSERT OR IGNORE INTO shared_hashes (hash) SELECT f.hash FROM fingerprints AS f WHERE f.call_id > ? "
                "AND EXISTS (SELECT 1 FROM fingerprints AS g WHERE g.hash = f.hash AND g.call_id != f.call_id)",
                (done[0] if done else 0,),
            )
            conn.execute("INSERT OR REPLACE INTO parquet_meta VALUES ('shared_upto', ?)", (upto,))
            conn.execute("COMMIT")
    finally:
        conn.close()
    return path


def _load_part(conn: sqlite3.Connection, part: str) -> None:
    """Add one part's files to the index (newest rows per file win; an error never replaces good rows)."""
    _, pq = _pa()
    try:
        batches = pq.ParquetFile(part).iter_batches(batch_size=4096)
        groups = itertools.groupby(
            (rec for b in batches for rec in b.to_pylist()),
            key=lambda r: (r["path_bytes"], r["channel_mode"], r["model_version"], r["scored_at"]),
        )
        for (path_b, mode, version, scored_at), rows in groups:
            _load_file(conn, (db_path(os.fsdecode(path_b)), mode, version), scored_at, list(rows))
    except (OSError, ValueError) as exc:  # a damaged part (ArrowInvalid is a ValueError): skipped, said
        print(f"robodetect: {display_path(part)}: unreadable Parquet part skipped ({exc})", file=sys.stderr)


def _load_file(conn: sqlite3.Connection, key: tuple, scored_at: float, records: list[dict]) -> None:
    newest, good = conn.execute(
        f"SELECT max(scored_at), max(error IS NULL) FROM calls WHERE {FILE_KEY}", key
    ).fetchone()
    if newest is not None and newest >= scored_at:
        return  # the index has these rows, or newer ones
    error = records[0]["error"] if records[0]["label"] == "error" else None
    if error is not None and good:
        conn.execute("INSERT INTO failed_retries VALUES (?, ?, ?, ?, ?)", (*key, error, scored_at))
        return
    delete_file_rows(conn, key)
    rows = [
        (
            [key[0] if c == "path" else rec.get(c) for c in CALL_COLUMNS],  # a part from before a column: NULL
            [(w["start_seconds"], w["end_seconds"], w["robot_probability"]) for w in rec["windows"] or []],
        )
        for rec in records
    ]
    landmarks = records[0]["fingerprint"] or []
    insert_file_rows(conn, rows, [(f["hash"], f["t"]) for f in landmarks], share=False)  # shared_hashes: index()


__all__ = [
    "parquet_missing",
    "ParquetStore",
    "index",
    "is_dataset",
    "wants_dataset",
    "create",
    "file_records",
    "write_part",
    "part_name",
]
