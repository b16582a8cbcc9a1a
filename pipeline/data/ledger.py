"""What is known about a file, recorded by the file's identity so that it is read once.

Validating the real store means reading 7.7 GB (finite values) and hashing it (sha256).
:class:`FileLedger` records such facts under the file's **identity**: device, inode, size
and modification time in nanoseconds. A file unchanged in all four is not read again; any
write (an edit, a truncation, a replacement by a new file) changes the size, the mtime or
the inode, so the fact is computed afresh and a bad file is still caught.

The path is deliberately not part of the identity: a hard link is the same file under
another name. The store's files are hard links of the user's files, of the shared
downloads or of DVC's cache, so a queued experiment's fresh workspace sees the identities
that an earlier run recorded and reads nothing again. The default ledger is a SQLite file
in the user's cache directory, shared by every workspace
(:func:`pipeline.config.paths.ledger_file`);
DVC keeps its own md5s the same way (its state database, by inode, mtime and size).

Like DVC's state, the identity cannot see an edit that keeps the size and restores the
previous mtime on purpose (``touch -d``); nothing short of reading the file can.
"""

import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (
    dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER, fact TEXT, value TEXT,
    path TEXT, PRIMARY KEY (dev, ino, size, mtime_ns, fact)
)
"""
_TIMEOUT_S = 60  # concurrent experiments wait for each other's writes

Identity = tuple[int, int, int, int]


def identity(path: str | os.PathLike) -> Identity:
    """``(device, inode, size, mtime_ns)`` of the file at ``path`` (symlinks followed)."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


class FileLedger:
    """Facts about files (``sha256``, ``finite:avadataset``, ...) keyed by file identity.

    Args:
        path: the SQLite file; ``":memory:"`` keeps the facts for this process only
            (default). A ledger that cannot be opened (e.g. a read-only cache directory)
            falls back to memory with a warning: facts are then recomputed every run.
    """

    def __init__(self, path: str | os.PathLike = ":memory:") -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect(self.path)
        except (OSError, sqlite3.Error) as err:
            print(f"warning: file ledger {self.path} unusable ({err}); not kept", file=sys.stderr)
            self.path = ":memory:"
            self._db = self._connect(self.path)

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=_TIMEOUT_S, isolation_level=None)
        db.execute(_SCHEMA)
        return db

    def get(self, path: str | os.PathLike, fact: str, key: Identity | None = None) -> str | None:
        """The value of ``fact`` recorded for ``path`` as of identity ``key`` (default: now)."""
        row = self._db.execute(
            "SELECT value FROM facts WHERE dev=? AND ino=? AND size=? AND mtime_ns=? AND fact=?",
            (*(identity(path) if key is None else key), fact),
        ).fetchone()
        return None if row is None else row[0]

    def put(
        self, path: str | os.PathLike, fact: str, value: str, key: Identity | None = None
    ) -> None:
        """Record ``fact`` = ``value`` for ``path`` as of identity ``key`` (default: now)."""
        key = identity(path) if key is None else key
        self._db.execute(
            "INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*key, fact, value, os.fspath(Path(path).absolute())),
        )

    def fact(self, path: str | os.PathLike, fact: str, compute: Callable[[], str]) -> str:
        """The value of ``fact`` for ``path``: recorded, or computed now and recorded.

        The value is recorded only when the file kept its identity while ``compute`` read
        it, so that a file written meanwhile is not credited with a fact of older bytes.
        An exception of ``compute`` (a failed check) propagates and records nothing.

        Args:
            path: the file.
            fact: the fact's name.
            compute: reads the file and returns the fact's value.
        """
        before = identity(path)
        known = self.get(path, fact, before)
        if known is not None:
            return known
        value = compute()
        if identity(path) == before:
            self.put(path, fact, value, before)
        return value

    def close(self) -> None:
        """Close the database."""
        self._db.close()
