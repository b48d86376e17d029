"""The history: every conversation's questions, answers, citations and sources, kept in SQLite
in the data directory. One store for the CLI, the server, the host and every browser; each
call opens its own connection, so threads and processes may use it at once (WAL, and a
write waits for another to finish rather than failing)."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import LocalsearchError
from .events import finite

__all__ = ["History", "HistoryError", "NoSuchConversation", "HISTORY_FILE", "KEEP_TURNS"]

HISTORY_FILE = "history.sqlite3"
KEEP_TURNS = 4  # the earlier turns a follow-up is answered with (its prompt holds only the last one's sources)
TITLE_CHARS = 200
WAIT_SECONDS = 10.0  # how long a write waits for another process's write

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,          -- the first question
    client TEXT NOT NULL,         -- who began it: cli or browser
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,    -- 1, 2, ... in the order asked
    question TEXT NOT NULL,
    answer TEXT NOT NULL,         -- the answer's text, with its [n] markers
    document TEXT NOT NULL,       -- JSON: the answer message (citations, sources, model, timings)
    continuation TEXT,            -- JSON: the model's prompt and reply, repeated by a follow-up
    client TEXT NOT NULL,         -- who asked it: cli or browser
    created REAL NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
CREATE INDEX IF NOT EXISTS conversations_by_update ON conversations(updated DESC);
CREATE INDEX IF NOT EXISTS turns_by_client ON turns(client, created DESC);
CREATE TABLE IF NOT EXISTS cleared (
    at REAL NOT NULL              -- when every conversation was last deleted (one row at most)
);
PRAGMA user_version = 1;
COMMIT;
"""


class HistoryError(LocalsearchError):
    """The history cannot be read or written."""


class NoSuchConversation(HistoryError):
    """No conversation has this id (deleted, or never kept)."""


class History:
    def __init__(self, data_dir: str | Path):
        self.path = Path(data_dir) / HISTORY_FILE

    # -- writing ------------------------------------------------------------------------------
    def add_turn(self, conversation_id: str | None, answer: dict, client: str,
                 asked: float | None = None) -> tuple[str, int]:
        """Store one answered question (an ``answer`` message's data) as the next turn of
        ``conversation_id``, or of a new conversation when it is None; returns (id, position).
        What was deleted while the question was being answered (``asked``: when it was asked)
        stays deleted: a conversation, or all of them."""
        answer = _storable(answer)
        question = answer.get("question") or ""
        turn = answer.get("turn") or {}
        document = {k: v for k, v in answer.items() if k != "turn"}
        continuation = ({"messages": turn["messages"], "reply": turn["reply"]}
                        if turn.get("messages") and turn.get("reply") else None)
        now = time.time()
        with self._writing() as db:
            cleared = db.execute("SELECT MAX(at) FROM cleared").fetchone()[0]
            if asked is not None and cleared is not None and cleared >= asked:
                raise NoSuchConversation("the history was cleared while this question was answered; "
                                         "the answer was not kept")
            if conversation_id is None:
                conversation_id = _new_id(db)
                db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                           (conversation_id, _title(question), client, now, now))
            elif db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id)).rowcount == 0:
                raise NoSuchConversation(f"conversation {conversation_id} was deleted; the answer was not kept")
            position = db.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM turns WHERE conversation_id = ?",
                                  (conversation_id,)).fetchone()[0]
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (conversation_id, position, question, answer.get("answer") or "",
                        _json(document), _json(continuation) if continuation else None, client, now))
        return conversation_id, position

    def delete(self, conversation_ids: list[str] | None = None) -> int:
        """Delete these conversations (None: all of them); returns how many there were. Their
        text is overwritten in the file, not only unlinked (secure_delete)."""
        with self._writing() as db:
            if conversation_ids is None:
                deleted = db.execute("DELETE FROM conversations").rowcount
                db.execute("DELETE FROM cleared")
                db.execute("INSERT INTO cleared VALUES (?)", (time.time(),))
            else:
                deleted = sum(db.execute("DELETE FROM conversations WHERE id = ?", (_text(id),)).rowcount
                              for id in conversation_ids)
        if deleted:
            self._checkpoint()
        return deleted

    def _checkpoint(self) -> None:
        """Move the write-ahead log into the file and empty it: until then the log holds the
        deleted pages, and the file the old ones. A reader in another process holds the log
        back; the next write's checkpoint then finishes the job."""
        deadline = time.monotonic() + 2.0
        with self._reading() as db:
            while db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)

    # -- reading ------------------------------------------------------------------------------
    def turns(self, conversation_id: str, keep: int = KEEP_TURNS) -> list[dict]:
        """The last ``keep`` turns of a conversation, oldest first, as a follow-up request takes
        them: ``question``, ``answer`` and, when the model wrote it, ``messages`` and ``reply``."""
        with self._reading() as db:
            self._must_exist(db, conversation_id)
            rows = db.execute("SELECT question, answer, continuation FROM turns WHERE conversation_id = ? "
                              "ORDER BY position DESC LIMIT ?", (conversation_id, keep)).fetchall()
        turns = []
        for question, answer, continuation in reversed(rows):
            turns.append({"question": question, "answer": answer, **(json.loads(continuation) if continuation else {})})
        return turns

    def conversation(self, conversation_id: str) -> dict:
        """One conversation with every turn: ``position``, ``question``, ``created`` and ``answer``
        (the answer message's data: text, citations, sources, ...)."""
        with self._reading() as db:
            row = self._must_exist(db, conversation_id)
            turns = [{"position": position, "question": question, "created": created, "answer": json.loads(document)}
                     for position, question, document, created in db.execute(
                         "SELECT position, question, document, created FROM turns WHERE conversation_id = ? "
                         "ORDER BY position", (conversation_id,))]
        return {**_summary(row, len(turns)), "turns": turns}

    def conversations(self, limit: int = 50, offset: int = 0, query: str = "") -> tuple[list[dict], int]:
        """(the newest conversations first, how many there are in all); ``query``: only those
        with a question or answer containing it (case-insensitive for ASCII letters)."""
        where, parameters, query = "", [], _text(query)
        if query:
            where = ("WHERE c.id IN (SELECT conversation_id FROM turns WHERE instr(lower(question), lower(?)) "
                     "OR instr(lower(answer), lower(?)))")
            parameters = [query, query]
        with self._reading() as db:
            total = db.execute(f"SELECT COUNT(*) FROM conversations c {where}", parameters).fetchone()[0]
            rows = db.execute(f"SELECT c.id, c.title, c.client, c.created, c.updated, "
                              f"(SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) "
                              f"FROM conversations c {where} ORDER BY c.updated DESC, c.rowid DESC LIMIT ? OFFSET ?",
                              [*parameters, limit, offset]).fetchall()
        return [_summary(row[:5], row[5]) for row in rows], total

    def last(self, client: str | None = None) -> str | None:
        """The id of the conversation most recently asked in (by ``client``, if given: the
        one of its last question, whoever began the conversation)."""
        with self._reading() as db:
            if client is None:
                row = db.execute("SELECT id FROM conversations ORDER BY updated DESC, rowid DESC LIMIT 1").fetchone()
            else:
                row = db.execute("SELECT conversation_id FROM turns WHERE client = ? "
                                 "ORDER BY created DESC, rowid DESC LIMIT 1", (client,)).fetchone()
        return row[0] if row else None

    def resolve(self, prefix: str) -> str:
        """The id of the one conversation whose id starts with ``prefix`` (as ``history`` shows
        them, shortened), else HistoryError."""
        prefix = _text(prefix)
        if not prefix.strip():
            raise NoSuchConversation("no conversation id given (see: localsearch history)")
        with self._reading() as db:
            ids = [row[0] for row in db.execute("SELECT id FROM conversations WHERE substr(id, 1, ?) = ? LIMIT 2",
                                                (len(prefix), prefix))]
        if not ids:
            raise NoSuchConversation(f"no conversation {prefix!r} in the history (see: localsearch history)")
        if len(ids) > 1:
            raise HistoryError(f"{prefix!r} names more than one conversation; give more of its id")
        return ids[0]

    # -- inside -------------------------------------------------------------------------------
    @staticmethod
    def _must_exist(db: sqlite3.Connection, conversation_id: str) -> tuple:
        row = db.execute("SELECT id, title, client, created, updated FROM conversations WHERE id = ?",
                         (conversation_id,)).fetchone()
        if row is None:
            raise NoSuchConversation(f"no conversation {conversation_id!r} in the history (deleted, or never kept)")
        return row

    def _connect(self) -> sqlite3.Connection:
        from .private import private_directory

        try:
            private_directory(self.path.parent)
            db = sqlite3.connect(self.path, timeout=WAIT_SECONDS, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise HistoryError(f"cannot open the history {self.path}: {error}") from None
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA secure_delete = ON")
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                self._create(db)
            self._make_private()
        except (OSError, sqlite3.Error) as error:
            db.close()
            raise HistoryError(f"cannot use the history {self.path}: {error}") from None
        return db

    def _make_private(self) -> None:
        """The file and its -wal and -shm are the user's alone, whatever the umask of the
        process that made them. By chmod, never by opening the file: closing any descriptor of
        it would drop the locks SQLite holds on it in this process (and corrupt the database)."""
        for path in (self.path, self.path.with_name(self.path.name + "-wal"),
                     self.path.with_name(self.path.name + "-shm")):
            try:
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)
            except FileNotFoundError:
                pass

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        """Make the tables: one transaction, harmless if another process made them first.
        Switching to WAL does not wait for another process's lock as statements do: it is
        tried again until WAIT_SECONDS have passed."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL")  # readers do not wait for a writer
                db.executescript(_SCHEMA)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @contextmanager
    def _reading(self):
        db = self._connect()
        try:
            yield db
        except (sqlite3.Error, UnicodeError) as error:
            raise HistoryError(f"cannot read the history {self.path}: {error}") from None
        finally:
            db.close()

    @contextmanager
    def _writing(self):
        """One transaction, taken at once (BEGIN IMMEDIATE) so that two writers queue instead of
        deadlocking; rolled back whole if anything in it fails."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except (sqlite3.Error, UnicodeError) as error:
            raise HistoryError(f"cannot write the history {self.path}: {error}") from None
        finally:
            db.close()


def _new_id(db: sqlite3.Connection) -> str:
    while True:
        id = secrets.token_hex(8)
        if db.execute("SELECT 1 FROM conversations WHERE id = ?", (id,)).fetchone() is None:
            return id


def _title(question: str) -> str:
    title = " ".join(question.split())
    return title if len(title) <= TITLE_CHARS else title[:TITLE_CHARS - 1].rstrip() + "…"


def _text(value: str) -> str:
    """``value`` with any lone surrogate (which a browser's JSON may carry) as U+FFFD: SQLite
    stores UTF-8, which cannot hold one."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _storable(value):
    """``value`` with every string as SQLite and the terminal can hold it (no lone surrogate)
    and every number as JSON can (no NaN)."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(v) for v in value]
    return finite(value)


def _summary(row: tuple, turns: int) -> dict:
    id, title, client, created, updated = row
    return {"id": id, "title": title, "client": client, "created": created, "updated": updated, "turns": turns}


def _json(value) -> str:
    # ASCII and strict: what reaches here went through _storable (no lone surrogate, no NaN), and
    # a NaN that did not is an error now rather than a row the browser's JSON.parse refuses later.
    return json.dumps(value, ensure_ascii=True, allow_nan=False, default=str)
