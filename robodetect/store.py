"""The result store of ``robodetect scan``: one SQLite file (standard library, WAL mode).

Tables:

- ``calls``: one row per file and channel (``channel`` is the channel mode, the channel name with
  ``--channel each``, or ``call`` for the call verdict of a two-party recording under
  ``--channel auto``, whose per-channel rows ``left``/``right`` have ``role = 'party'``; every
  other row has ``role = 'call'``, and ``party`` names the channel that decided a call verdict): path, size, mtime, content hash, sample rate, duration, speech
  seconds, robot probability, label (``robot``/``uncertain``/``human``/``no_speech``/``error``), threshold,
  no-speech reason, timing features (JSON), cues (JSON), model version, error text.
  Unique on (path, channel_mode, channel, model_version).
  ``path`` is text, or the raw file-name bytes (a BLOB) for a name that is not UTF-8.
- ``windows``: per-window scores (call_id, idx, start_seconds, end_seconds, robot_probability).
- ``failed_retries``: a rescan that failed on a file already scored (its good rows are kept).
- ``fingerprints``: landmark hashes of each file's audio (call_id of its first ``call`` row, frame
  ``t``, ``hash``), indexed by hash; see :mod:`robodetect.campaigns`. ``calls.fingerprinted`` is 1
  where the file's fingerprint was taken, 0 where it was scanned with ``--no-fingerprints``
  (``campaigns`` cannot link it and says how many such files it skipped), NULL on error rows and
  on rows written before the column existed (every scan fingerprinted then). ``shared_hashes``: every
  hash seen in two or more calls (kept up to date as files are written, so clustering reads only
  the rows that can link calls).

The file carries ``PRAGMA application_id`` = :data:`APPLICATION_ID`; any other SQLite file is
refused and never modified. All rows of one file are replaced together inside one transaction, and a transaction is either
in the WAL or not: a crash (even SIGKILL) loses at most the uncommitted rows, never corrupts the
store, and never leaves a file half-written. ``synchronous=NORMAL``: a power cut may also lose the
last commits, still without corruption.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sqlite3
import stat
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .audio import display_path
from .jsonio import dumps

SCHEMA_VERSION = 2
APPLICATION_ID = 0x524F4244  # "ROBD": PRAGMA application_id of every robodetect store
BUSY_TIMEOUT_SECONDS = 30.0  # how long a writer waits for another scan's write group
SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    channel_mode TEXT NOT NULL,
    channel TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'call',
    party TEXT,
    model_version TEXT NOT NULL,
    size INTEGER,
    mtime REAL,
    content_hash TEXT,
    sample_rate INTEGER,
    duration_seconds REAL,
    speech_seconds REAL,
    robot_probability REAL,
    label TEXT NOT NULL,
    threshold REAL,
    reason TEXT,
    timing TEXT,
    cues TEXT,
    error TEXT,
    scored_at REAL NOT NULL,
    UNIQUE (path, channel_mode, channel, model_version)
);
CREATE INDEX IF NOT EXISTS calls_resume ON calls (path, channel_mode, model_version);
CREATE INDEX IF NOT EXISTS calls_label ON calls (label, robot_probability);
CREATE TABLE IF NOT EXISTS windows (
    call_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    start_seconds REAL NOT NULL,
    end_seconds REAL NOT NULL,
    robot_probability REAL NOT NULL,
    PRIMARY KEY (call_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failed_retries (
    path TEXT NOT NULL,
    channel_mode TEXT NOT NULL,
    model_version TEXT NOT NULL,
    error TEXT NOT NULL,
    failed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fingerprints (
    call_id INTEGER NOT NULL,
    t INTEGER NOT NULL,
    hash INTEGER NOT NULL,
    PRIMARY KEY (call_id, t, hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fingerprints_hash ON fingerprints (hash, call_id, t);
CREATE TABLE IF NOT EXISTS shared_hashes (hash INTEGER PRIMARY KEY);
"""
#: after a call's fingerprint rows are in: its hashes that another call has too (index probes)
SHARE_HASHES = """
INSERT OR IGNORE INTO shared_hashes (hash)
SELECT f.hash FROM fingerprints AS f WHERE f.call_id = ?
AND EXISTS (SELECT 1 FROM fingerprints AS g WHERE g.hash = f.hash AND g.call_id != ?)
"""
#: every hash in two or more calls, in one pass (a store written before ``shared_hashes`` existed)
BACKFILL_SHARED = (
    "INSERT OR IGNORE INTO shared_hashes (hash) SELECT hash FROM fingerprints GROUP BY hash "
    "HAVING min(call_id) < max(call_id)"
)
#: columns added after schema version 1, with their definitions (added to older stores on open)
ADDED_COLUMNS = {"role": "TEXT NOT NULL DEFAULT 'call'", "party": "TEXT", "fingerprinted": "INTEGER"}
#: columns of ``calls`` in export order (``timing`` and ``cues`` are JSON in the store)
CALL_COLUMNS = (
    "path", "channel_mode", "channel", "role", "party", "model_version", "size", "mtime", "content_hash", "sample_rate",
    "duration_seconds", "speech_seconds", "robot_probability", "label", "threshold", "reason", "timing", "cues",
    "error", "scored_at", "fingerprinted",
)  # fmt: skip
#: numeric ``calls`` columns (the rest are text), for the Parquet writers (result parts and export)
INT_COLUMNS = frozenset({"size", "sample_rate", "fingerprinted"})
FLOAT_COLUMNS = frozenset(
    {"mtime", "duration_seconds", "speech_seconds", "robot_probability", "threshold", "scored_at"}
)
INSERT_CALL = f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * len(CALL_COLUMNS))})"
FILE_KEY = "path = ? AND channel_mode = ? AND model_version = ?"  # the rows of one file under one model


@dataclass
class FileMeta:
    size: int | None = None
    mtime: float | None = None
    content_hash: str | None = None
    sample_rate: int | None = None
    fingerprint: object = None  # (n, 2) int array of (hash, frame) from campaigns.fingerprint_channels
    # None: not fingerprinted (scan --no-fingerprints); an empty array: fingerprinted, no landmarks


class StoreError(ValueError):
    """A result store that cannot be used (foreign file, newer schema, locked, I/O failure)."""


def db_path(path: str) -> str | bytes:
    """A file path as the store keeps it: text when it is valid Unicode, else the raw file-name
    bytes (a BLOB), so a non-UTF-8 name is stored and exported losslessly."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def fs_path(value: str | bytes | None) -> str | None:
    """Inverse of :func:`db_path`: the ``str`` path (undecodable bytes as surrogate escapes)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _uri(path: str | os.PathLike, mode: str) -> str:
    """A ``file:`` URI for ``path``: ``#``, ``?``, ``%`` and non-UTF-8 bytes percent-encoded."""
    from urllib.parse import quote_from_bytes

    return f"file:{quote_from_bytes(os.fsencode(os.path.abspath(path)), safe='/')}?mode={mode}"


def _check_foreign(conn: sqlite3.Connection, where: str) -> bool:
    """True when ``conn`` is a robodetect store; False when it is an empty database; raises
    :class:`StoreError` for any other file (which is never modified)."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{where}: not a robodetect result store ({exc}); refusing to touch it") from None
    if app_id == APPLICATION_ID or (app_id == 0 and version in (1, 2) and {"calls", "windows"} <= tables):
        if version > SCHEMA_VERSION:  # written by a newer robodetect
            raise StoreError(
                f"{where}: result store schema {version} is newer than this robodetect's ({SCHEMA_VERSION})"
            )
        return True
    if app_id == 0 and version == 0 and not tables:
        return False
    raise StoreError(
        f"{where}: not a robodetect result store (SQLite application_id {app_id}, tables "
        f"{', '.join(sorted(tables)) or 'none'}); refusing to modify it — choose another --out"
    )


def connect(path: str | os.PathLike, readonly: bool = False) -> sqlite3.Connection:
    """Open a result store: read-only (must exist), or for writing (created when absent). Any other
    SQLite file (another application's, checked by ``PRAGMA application_id``) is refused untouched.
    Read-only, a Parquet result folder (:mod:`robodetect.parquetstore`) opens its index."""
    where = display_path(path)
    if readonly and os.path.isdir(path):  # a Parquet result dataset: read through its index
        from .parquetstore import index

        path = index(path)
    if os.path.exists(path) and not os.path.isdir(path) and not stat.S_ISREG(os.stat(path).st_mode):
        # a FIFO or a device: SQLite would block opening it
        raise StoreError(f"{where}: not a regular file (a result store is a SQLite file or a Parquet folder)")
    if readonly:
        if not os.path.exists(path):
            raise FileNotFoundError(f"no result store at {where}")
        conn = sqlite3.connect(_uri(path, "ro"), uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            if not _check_foreign(conn, where):
                raise StoreError(f"{where}: not a robodetect result store (an empty database)")
        except BaseException:
            conn.close()
            raise
        return conn
    if os.path.exists(path) and os.path.getsize(path) > 0:
        probe = sqlite3.connect(_uri(path, "ro"), uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            _check_foreign(probe, where)
        finally:
            probe.close()
    conn = sqlite3.connect(os.fsencode(path), timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        if not _check_foreign(conn, where):  # re-checked under the write lock (another writer may have been first)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        have = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
        for name, definition in ADDED_COLUMNS.items():
            if name not in have:
                conn.execute(f"ALTER TABLE calls ADD COLUMN {name} {definition}")
        if "fingerprints" in tables and "shared_hashes" not in tables:
            # a store fingerprinted before shared_hashes existed: list its shared hashes now, or
            # campaigns would only link the calls scanned from here on
            conn.execute(BACKFILL_SHARED)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")  # a store from before application_id
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        raise
    return conn


def call_rows(
    path: str | bytes,
    channel_mode: str,
    model_version: str,
    meta: FileMeta,
    results: list,
    error: str | None,
    scored_at: float,
) -> list[tuple[tuple, list[tuple[float, float, float]]]]:
    """A file's ``calls`` rows (values in :data:`CALL_COLUMNS` order) with each row's windows
    (start, end, robot probability): one error row, or the call rows then the per-party rows."""
    file_cols = (model_version, meta.size, meta.mtime, meta.content_hash, meta.sample_rate)
    if error is not None:
        empty = (None, None, None)  # duration, speech, probability; then threshold, reason, timing, cues
        row = (
            path,
            channel_mode,
            channel_mode,
            "call",
            None,
            *file_cols,
            *empty,
            "error",
            *empty,
            None,
            error,
            scored_at,
            None,
        )
        return [(row, [])]
    fingerprinted = int(meta.fingerprint is not None)
    rows = [(r, "call") for r in results] + [(p, "party") for r in results for p in r.parties]
    return [
        (
            (
                path,
                channel_mode,
                r.channel,
                role,
                r.party,
                *file_cols,
                r.duration_seconds,
                r.speech_seconds,
                r.robot_probability,
                r.label,
                r.threshold,
                r.reason,
                dumps(r.timing),
                dumps(r.cues),
                None,
                scored_at,
                fingerprinted,
            ),
            [(w.start_seconds, w.end_seconds, w.robot_probability) for w in r.windows],
        )
        for r, role in rows
    ]


def delete_file_rows(conn: sqlite3.Connection, key: tuple) -> None:
    """Delete every row of one file key (path, channel mode, model version) with its windows and
    fingerprints."""
    old = [row[0] for row in conn.execute(f"SELECT id FROM calls WHERE {FILE_KEY}", key)]
    if old:
        marks = ", ".join("?" * len(old))
        for table in ("fingerprints", "windows"):
            conn.execute(f"DELETE FROM {table} WHERE call_id IN ({marks})", old)
        conn.execute(f"DELETE FROM calls WHERE {FILE_KEY}", key)


def insert_file_rows(conn: sqlite3.Connection, rows: list, fingerprint, *, share: bool) -> None:
    """Insert one file's rows (:func:`call_rows`' (row, windows) pairs) and its fingerprint ((n, 2)
    (hash, frame), on the first row); ``share``: list the hashes another call has too in
    ``shared_hashes`` now (a bulk loader does it once at the end)."""
    for n, (row, windows) in enumerate(rows):
        cur = conn.execute(INSERT_CALL, row)
        conn.executemany(
            "INSERT INTO windows VALUES (?, ?, ?, ?, ?)", [(cur.lastrowid, i, *w) for i, w in enumerate(windows)]
        )
        if n == 0 and fingerprint is not None and len(fingerprint):
            fp = np.asarray(fingerprint, dtype=np.int64)
            ids = np.column_stack([np.full(len(fp), cur.lastrowid, np.int64), fp[:, 1], fp[:, 0]])
            conn.executemany("INSERT OR IGNORE INTO fingerprints (call_id, t, hash) VALUES (?, ?, ?)", ids.tolist())
            if share:
                conn.execute(SHARE_HASHES, (cur.lastrowid, cur.lastrowid))


def scored_hash(
    conn: sqlite3.Connection, path: str, channel_mode: str, model_version: str, *, fingerprinted: bool = False
) -> str | None:
    """Content hash of the file's error-free rows for this model version in a store, if it was scored
    (``fingerprinted``: and fingerprinted; a file scanned with ``--no-fingerprints`` is not done for a
    scan that fingerprints)."""
    have = _has_column(conn, "fingerprinted")
    row = conn.execute(
        f"SELECT content_hash, max(error IS NOT NULL), {'min(coalesce(fingerprinted, 1))' if have else '1'} "
        f"FROM calls WHERE {FILE_KEY}",
        (db_path(path), channel_mode, model_version),
    ).fetchone()
    if not row or row[0] is None or row[1] or (fingerprinted and not row[2]):
        return None
    return row[0]


class StoreContext:
    """``with store:`` closes it on success and aborts it (drops what is not yet durable) on an error."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ResultStore(StoreContext):
    """Writer used by :func:`robodetect.batch.scan`; rows become durable at :meth:`commit`.

    Writes are grouped: the first write after a commit opens a ``BEGIN IMMEDIATE`` transaction,
    :meth:`commit` ends it, and between groups no lock is held, so two scans can share one store
    (each waits up to :data:`BUSY_TIMEOUT_SECONDS` for the other's group). Each file is written
    inside a SAVEPOINT: an error half-way through a file rolls that file back, never leaving it
    half-written.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.conn = connect(path)

    def _begin(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")

    def scored_hash(
        self, path: str, channel_mode: str, model_version: str, *, fingerprinted: bool = False
    ) -> str | None:
        """Content hash of the file's error-free rows for this model version, if it was scored
        (``fingerprinted``: and fingerprinted)."""
        return scored_hash(self.conn, path, channel_mode, model_version, fingerprinted=fingerprinted)

    def write_file(
        self, path: str, channel_mode: str, model_version: str, meta: FileMeta, results: list, error: str | None
    ) -> bool:
        """Replace every row of (path, channel mode, model version) with ``results`` (Result
        objects) or, when ``error`` is set, one error row. An error never replaces good rows: it
        is recorded in ``failed_retries`` instead. Returns False in that case."""
        c = self.conn
        key = (db_path(path), channel_mode, model_version)
        self._begin()
        c.execute("SAVEPOINT file")
        try:
            if (
                error is not None
                and c.execute(f"SELECT 1 FROM calls WHERE {FILE_KEY} AND error IS NULL", key).fetchone()
            ):
                c.execute("INSERT INTO failed_retries VALUES (?, ?, ?, ?, ?)", (*key, error, time.time()))
                c.execute("RELEASE file")
                return False
            delete_file_rows(c, key)
            self._insert(key, meta, results, error)
        except BaseException:
            c.execute("ROLLBACK TO file")
            c.execute("RELEASE file")
            raise
        c.execute("RELEASE file")
        return True

    def _insert(self, key: tuple, meta: FileMeta, results: list, error: str | None) -> None:
        fingerprint = meta.fingerprint if error is None else None  # an error row has none
        insert_file_rows(self.conn, call_rows(*key, meta, results, error, time.time()), fingerprint, share=True)

    def commit(self) -> None:
        """Make every file written so far durable (ends the write group; the lock is released)."""
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def abort(self) -> None:
        """Drop the uncommitted group (after an I/O error) and close; committed files stay."""
        with contextlib.suppress(sqlite3.Error):
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        self.conn.close()

    def close(self) -> None:
        self.commit()
        self.conn.close()


# ---- reading ------------------------------------------------------------------------------
def iter_rows(conn: sqlite3.Connection, windows: bool = False) -> Iterator[dict]:
    """Every ``calls`` row as a dict (timing and cues decoded), in path order; with
    ``windows=True`` each carries its per-window scores. Streams: memory stays flat."""
    cols = ", ".join(_select_columns(conn))
    win = conn.cursor()
    for row in conn.execute(f"SELECT id, {cols} FROM calls ORDER BY path, channel, model_version"):
        d = dict(zip(CALL_COLUMNS, row[1:], strict=False))
        d["path"] = fs_path(d["path"])
        d["timing"] = json.loads(d["timing"]) if d["timing"] else None
        d["cues"] = json.loads(d["cues"]) if d["cues"] else None
        if windows:
            d["windows"] = [
                {"start_seconds": a, "end_seconds": b, "robot_probability": p}
                for a, b, p in win.execute(
                    "SELECT start_seconds, end_seconds, robot_probability FROM windows WHERE call_id = ? ORDER BY idx",
                    (row[0],),
                )
            ]
        yield d


def _select_columns(conn: sqlite3.Connection) -> list[str]:
    """CALL_COLUMNS as select expressions; a store from before a column was added reads its default."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    defaults = {"role": "'call'", "party": "NULL", "fingerprinted": "NULL"}
    return [c if c in have else f"{defaults[c]} AS {c}" for c in CALL_COLUMNS]


def _timing_names(conn: sqlite3.Connection) -> list[str]:
    from .features import TIMING_FEATURES

    names = list(TIMING_FEATURES)
    row = conn.execute("SELECT timing FROM calls WHERE timing IS NOT NULL LIMIT 1").fetchone()
    extra = [k for k in json.loads(row[0]) if k not in names] if row else []
    return names + extra


def _flat(d: dict, timing_names: list[str]) -> dict:
    """One flat record: timing features as ``timing_<name>`` columns, cues joined by ' | '."""
    out = {k: d[k] for k in CALL_COLUMNS if k not in ("timing", "cues")}
    timing = d["timing"] or {}
    for name in timing_names:
        out[f"timing_{name}"] = timing.get(name)
    out["cues"] = " | ".join(d["cues"]) if d["cues"] else None
    out["campaign"] = d.get("campaign")
    return out


def _campaigns_by_path(db_path: str | os.PathLike) -> dict:
    """{path: campaign number (1 = biggest)} for the calls of every campaign (robodetect.campaigns)."""
    from .campaigns import find_campaigns

    return {c.path: k for k, camp in enumerate(find_campaigns(db_path), 1) for c in camp.calls}


def export_results(db_path: str | os.PathLike, fmt: str, out_path: str | os.PathLike) -> int:
    """Write the store's rows as ``csv`` (flat), ``jsonl`` (nested: timing dict, cues list,
    per-window scores) or ``parquet`` (flat, plus a ``windows`` list column). Every row carries
    ``campaign``: the number of the campaign its file belongs to (1 = biggest), or null. Returns
    rows written."""
    if fmt not in ("csv", "jsonl", "parquet"):
        raise ValueError(f"unknown result format {fmt!r} (use csv, jsonl or parquet)")
    conn = connect(db_path, readonly=True)
    n = 0
    try:
        campaign = _campaigns_by_path(db_path)
        if fmt == "jsonl":
            with open(out_path, "w", encoding="utf-8") as fh:
                for d in iter_rows(conn, windows=True):  # a non-UTF-8 path: \udcXX escapes (surrogateescape)
                    d["campaign"] = campaign.get(d["path"])
                    fh.write(dumps(d) + "\n")
                    n += 1
            return n
        names = _timing_names(conn)
        if fmt == "csv":
            # surrogateescape: a non-UTF-8 file name is written back as its original bytes
            with open(out_path, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
                writer = None
                for d in iter_rows(conn):
                    d["campaign"] = campaign.get(d["path"])
                    flat = _flat(d, names)
                    if writer is None:
                        writer = csv.DictWriter(fh, fieldnames=list(flat))
                        writer.writeheader()
                    writer.writerow(flat)
                    n += 1
                if writer is None:
                    fh.write(",".join(_flat({k: None for k in CALL_COLUMNS}, names)) + "\n")
            return n
        return _export_parquet(conn, names, out_path, campaign)
    finally:
        conn.close()


def _export_parquet(conn: sqlite3.Connection, names: list[str], out_path: str | os.PathLike, campaign: dict) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("parquet export needs pyarrow (pip install 'robodetect[parquet]')") from None
    fields = []
    for k in _flat({k: None for k in CALL_COLUMNS}, names):
        if k in INT_COLUMNS or k == "campaign":
            fields.append(pa.field(k, pa.int64()))
        elif k in FLOAT_COLUMNS or k.startswith("timing_"):
            fields.append(pa.field(k, pa.float64()))
        else:
            fields.append(pa.field(k, pa.string()))
    window = pa.struct(
        [("start_seconds", pa.float64()), ("end_seconds", pa.float64()), ("robot_probability", pa.float64())]
    )
    # Arrow strings must be UTF-8: ``path`` shows a non-UTF-8 name with \\x.. escapes and
    # ``path_bytes`` keeps the exact file-name bytes of every row
    schema = pa.schema(fields + [pa.field("path_bytes", pa.binary()), pa.field("windows", pa.list_(window))])
    n, chunk = 0, []
    with pq.ParquetWriter(os.fspath(out_path), schema) as writer:
        for d in iter_rows(conn, windows=True):
            d["campaign"] = campaign.get(d["path"])
            flat = _flat(d, names)
            flat["path"], flat["path_bytes"] = display_path(d["path"]), os.fsencode(d["path"])
            flat["windows"] = d["windows"]
            chunk.append(flat)
            if len(chunk) >= 10000:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                n, chunk = n + len(chunk), []
        if chunk or n == 0:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            n += len(chunk)
    return n


def error_reason(path: str, error: str) -> str:
    """The reason part of an error (``"path: reason"``), with the file name removed everywhere."""
    for name in (path, display_path(path)):
        if error.startswith(f"{name}: "):
            error = error[len(name) + 2 :]
        error = error.replace(name, "<file>")
    return re.sub(r"\s+", " ", error).strip()


def _has_column(conn: sqlite3.Connection, name: str) -> bool:
    return any(row[1] == name for row in conn.execute("PRAGMA table_info(calls)"))


def summarize(db_path: str | os.PathLike, top: int = 10, campaigns: int = 3) -> dict:
    """Call verdicts by model version and label (per-party rows of two-party calls are counted
    under ``two_party``), the ``top`` most robotic calls, errors grouped by reason, and the
    biggest ``campaigns`` (replayed prompts, see :mod:`robodetect.campaigns`)."""
    from .campaigns import find_campaigns, unfingerprinted_files

    found = [c.summary() for c in find_campaigns(db_path)[:campaigns]] if campaigns else []
    unfingerprinted = unfingerprinted_files(db_path)
    conn = connect(db_path, readonly=True)
    try:
        calls = "role = 'call'" if _has_column(conn, "role") else "1"
        counts: dict[str, dict[str, int]] = {}
        for version, label, n in conn.execute(
            f"SELECT model_version, label, count(*) FROM calls WHERE {calls} "
            "GROUP BY model_version, label ORDER BY model_version, label"
        ):
            counts.setdefault(version, {})[label] = n
        two_party: dict = {"calls": 0, "robot": 0, "robot_party": {}}
        if _has_column(conn, "party"):
            two_party["calls"], two_party["robot"] = conn.execute(
                "SELECT count(*), coalesce(sum(label = 'robot'), 0) FROM calls WHERE role = 'call' AND channel = 'call'"
            ).fetchone()
            two_party["robot_party"] = dict(
                conn.execute(
                    "SELECT party, count(*) FROM calls WHERE role = 'call' AND channel = 'call' AND label = 'robot' "
                    "GROUP BY party ORDER BY party"
                ).fetchall()
            )
        party = "party" if _has_column(conn, "party") else "NULL"
        robotic = [
            dict(zip(("path", "channel", "party", "robot_probability", "model_version", "duration_seconds"), row))
            | {"path": fs_path(row[0])}
            for row in conn.execute(
                f"SELECT path, channel, {party}, robot_probability, model_version, duration_seconds FROM calls "
                f"WHERE robot_probability IS NOT NULL AND {calls} ORDER BY robot_probability DESC, path LIMIT ?",
                (top,),
            )
        ]
        reasons: Counter = Counter()
        examples: dict[str, str] = {}
        for path, error in conn.execute("SELECT path, error FROM calls WHERE error IS NOT NULL ORDER BY path"):
            path = fs_path(path)
            reason = error_reason(path, error)
            reasons[reason] += 1
            examples.setdefault(reason, path)
        errors = [{"reason": r, "count": n, "example": examples[r]} for r, n in reasons.most_common()]
        retries = conn.execute("SELECT count(*) FROM failed_retries").fetchone()[0]
        return {
            "counts": counts,
            "two_party": two_party,
            "most_robotic": robotic,
            "errors": errors,
            "failed_retries": retries,
            "campaigns": found,
            "unfingerprinted_files": unfingerprinted,
        }
    finally:
        conn.close()


LABELS = ("robot", "uncertain", "human", "no_speech", "error")


def format_summary(summary: dict) -> str:
    lines = []
    for version, labels in summary["counts"].items():
        total = sum(labels.values())
        order = list(LABELS) + sorted(k for k in labels if k not in LABELS)
        parts = ", ".join(f"{labels[k]} {k}" for k in order if k in labels)
        lines.append(f"model {version}: {total} calls: {parts}")
    if not summary["counts"]:
        lines.append("the store is empty")
    two = summary.get("two_party") or {}
    if two.get("calls"):
        sides = ", ".join(f"{n} on the {p} channel" for p, n in two["robot_party"].items())
        lines.append(f"two-party calls: {two['calls']}, {two['robot']} with a robot" + (f" ({sides})" if sides else ""))
    if summary["most_robotic"]:
        lines.append(f"most robotic {len(summary['most_robotic'])}:")
        for r in summary["most_robotic"]:
            ch = f" [{r['party'] or r['channel']}]" if r["channel"] not in ("mix",) else ""
            lines.append(
                f"  {r['robot_probability']:.3f}  {display_path(r['path'])}{ch}  ({r['duration_seconds']:.1f} s)"
            )
    if summary.get("campaigns"):
        lines.append("biggest campaigns (same prompt audio in many calls):")
        for c in summary["campaigns"]:
            prob = "n/a" if c["mean_robot_probability"] is None else f"{c['mean_robot_probability']:.3f}"
            voice = ", human-voiced" if c["human_voiced"] else ""
            lines.append(f"  {c['n_calls']:6d} calls  mean robot probability {prob}{voice}  (e.g. {c['examples'][0]})")
    if summary.get("unfingerprinted_files"):
        lines.append(
            f"{summary['unfingerprinted_files']} files scanned with --no-fingerprints: campaigns cannot include them"
        )
    if summary["errors"]:
        lines.append(f"errors by reason ({sum(e['count'] for e in summary['errors'])} files):")
        for e in summary["errors"]:
            lines.append(f"  {e['count']:6d}  {e['reason']}  (e.g. {display_path(e['example'])})")
    if summary.get("failed_retries"):
        lines.append(
            f"{summary['failed_retries']} rescans failed on files already scored; their good rows were kept "
            "(table failed_retries)"
        )
    return "\n".join(lines)


__all__ = ["ResultStore", "FileMeta", "export_results", "summarize", "format_summary", "iter_rows", "connect"]
