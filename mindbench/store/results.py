"""The results store: append-only JSONL, one record per benchmark cell, schema-versioned.

Why JSONL with a lock instead of a database: results are written by many short-lived processes
(sweeps, resumed sweeps, parallel runs on the same disk) and read by humans, `git diff` and CI.
One line per record, written under an exclusive `fcntl.flock` with flush+fsync, means two runs
appending to one file at once lose nothing, and a run killed mid-write leaves at most one torn
last line, which `read` skips with a warning.

The record is one type, `store/record.py`'s `Record` (its layout: docs/architecture.md, "The result
record"): `append` writes one, `read` returns them, whatever schema each line was written with.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mindbench.errors import InputError
from mindbench.store.record import SCHEMA, Record, cell_key

__all__ = ["SCHEMA", "DONE_STATUSES", "Record", "append", "cell_key", "latest", "read", "read_all"]

# Final statuses of a cell: ok, oom, crashed, timeout, skipped, error. "ok", "oom" and "skipped"
# are facts about this machine and model: rerunning gives the same answer, so --resume treats them
# as done. "crashed", "timeout" and "error" may be transient (a loaded machine, a flaky driver),
# so --resume runs them again.
DONE_STATUSES = ("ok", "oom", "skipped")


def _lock(f, exclusive: bool) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no flock; appends of one small line are still near-atomic
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _unlock(f) -> None:
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def append(path: str | os.PathLike, record: Record) -> None:
    """Append one record as one JSON line, atomically with respect to other appenders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = record.to_json()
    # Serialise before taking the lock: a record that can't be encoded must fail loudly here,
    # not leave half a line behind. default=str keeps odd values (Paths, numpy scalars) readable.
    line = json.dumps(record, default=str, sort_keys=False, separators=(",", ":")) + "\n"
    with open(path, "a+b") as f:
        _lock(f, exclusive=True)
        try:
            # A previous writer killed mid-line leaves no trailing newline; start on a fresh line
            # so our record is not glued to the torn one (which read() then skips on its own).
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.seek(0, os.SEEK_END)
                    f.write(b"\n")
            f.seek(0, os.SEEK_END)
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        finally:
            _unlock(f)


def read(path: str | os.PathLike, *, warn: bool = True) -> list[Record]:
    """All records in the file, oldest first. Corrupt or truncated lines are skipped (with a
    warning on stderr); a missing file or a newer schema than ours is a user error."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no results file at {path}; run `mindbench run --out {path}` first")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a results file: give the .jsonl file in it")
    with open(path, "rb") as f:
        _lock(f, exclusive=False)  # don't read a line while another process is writing it
        try:
            data = f.read()
        finally:
            _unlock(f)
    records = []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as e:
            if warn:
                print(f"mindbench: warning: skipping corrupt line {lineno} of {path} ({e})", file=sys.stderr)
            continue
        schema = rec.get("schema", SCHEMA)
        if isinstance(schema, int) and schema > SCHEMA:
            raise InputError(
                f"{path} line {lineno} has results schema {schema}, newer than this "
                f"mindbench understands ({SCHEMA}); upgrade mindbench"
            )
        try:
            record = Record.from_json(rec)
        except TypeError as e:  # a section that is not an object: a damaged line, like a torn one
            if warn:
                print(f"mindbench: warning: skipping corrupt line {lineno} of {path} ({e})", file=sys.stderr)
            continue
        records.append(record)
    return records


def read_all(paths) -> list[Record]:
    """All records of the given stores, through the store's own reader (skips corrupt lines)."""
    records = []
    for p in paths:
        if not Path(p).exists():
            raise InputError(f"results file {p} does not exist; run `mindbench run --out {p}` first")
        records.extend(read(p))
    return records


def latest(records: list[Record]) -> list[Record]:
    """Keep the newest record of each cell (a store that was appended to by reruns).

    Order of first appearance is kept so the table follows the sweep's order.
    """
    keep: dict[str, Record] = {}
    for rec in records:
        old = keep.get(rec.key)
        if old is None or (rec.timestamp or "") >= (old.timestamp or ""):
            keep[rec.key] = rec
    order = list(dict.fromkeys(r.key for r in records))
    return [keep[k] for k in order]
