"""`zicha backup` while the database is being written, and `zicha restore`."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.ops.backup import BackupError, backup, integrity_problem
from storage.db import open_db, utcnow


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    open_db(db_path).close()
    return db_path


def test_a_backup_taken_during_writes_opens_and_passes_integrity_check(env: Path, tmp_path: Path) -> None:
    writer_db = sqlite3.connect(env, timeout=10, check_same_thread=False)
    writer_db.execute("PRAGMA journal_mode=WAL")
    writer_db.execute("CREATE TABLE load (id INTEGER PRIMARY KEY, pair INTEGER NOT NULL, filler TEXT NOT NULL)")
    writer_db.commit()
    stop = threading.Event()
    written = [0]

    def write() -> None:
        # Rows come in pairs, each pair one transaction: a consistent copy has an even count.
        while not stop.is_set():
            with writer_db:
                for _ in range(2):
                    writer_db.execute("INSERT INTO load (pair, filler) VALUES (?, ?)", [written[0], "x" * 500])
            written[0] += 1

    thread = threading.Thread(target=write)
    thread.start()
    copies = []
    try:
        while written[0] < 50:  # the writer is well under way
            threading.Event().wait(0.001)
        runner = CliRunner()
        for n in range(3):
            result = runner.invoke(cli, ["backup", str(tmp_path / f"copy{n}.db")])
            assert result.exit_code == 0, result.output
            assert "integrity ok" in result.output
            copies.append(tmp_path / f"copy{n}.db")
    finally:
        stop.set()
        thread.join()
        writer_db.close()
    sizes = []
    for copy in copies:
        conn = sqlite3.connect(copy)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "one self-contained file"
        rows = conn.execute("SELECT count(*) FROM load").fetchone()[0]
        assert rows % 2 == 0, "no transaction is half in the copy"
        sizes.append(rows)
        conn.close()
        assert not Path(f"{copy}-wal").exists()
    assert sizes == sorted(sizes) and sizes[-1] < 2 * written[0]
    assert not list(tmp_path.glob("*.partial"))


def test_backup_into_a_folder_refuses_to_overwrite_and_names_the_problem(env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "backups"
    folder.mkdir()
    result = runner.invoke(cli, ["backup", str(folder)])
    assert result.exit_code == 0, result.output
    [made] = folder.glob("zicha-*.db")
    assert integrity_problem(made) is None
    again = runner.invoke(cli, ["backup", str(made)])
    assert again.exit_code == 1 and "already exists" in again.output and "--force" in again.output
    assert runner.invoke(cli, ["backup", str(made), "--force"]).exit_code == 0
    missing = runner.invoke(cli, ["backup", str(tmp_path / "nowhere" / "x.db")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    with pytest.raises(BackupError, match="must not overwrite"):
        backup(env, env, force=True)


def _institution_names(db_path: Path) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM institutions ORDER BY id")]
    finally:
        conn.close()


def _add_institution(db_path: Path, name: str, uscc: str) -> None:
    db = open_db(db_path)
    now = utcnow()
    db["institutions"].insert({"uscc": uscc, "name": name, "created_at": now, "updated_at": now})
    db.close()


def test_restore_checks_the_backup_keeps_the_replaced_database_and_respects_a_running_bot(
    env: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    _add_institution(env, "甲", "A1")
    assert runner.invoke(cli, ["backup", str(tmp_path / "b.db")]).exit_code == 0
    _add_institution(env, "乙", "B2")
    assert _institution_names(env) == ["甲", "乙"]

    # A damaged or foreign backup is refused before anything is touched.
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 300)
    refused = runner.invoke(cli, ["restore", str(garbage)])
    assert refused.exit_code == 1 and "Not restoring" in refused.output and "Traceback" not in refused.output
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    assert "not a Zicha database" in runner.invoke(cli, ["restore", str(other)]).output
    assert _institution_names(env) == ["甲", "乙"]

    # A running bot (fresh heartbeat) is protected unless --force.
    db = open_db(env)
    now = utcnow()
    db["heartbeat"].insert({"role": "bot", "pid": 99999, "mode": "polling", "started_at": now, "beat_at": now})
    db.close()
    busy = runner.invoke(cli, ["restore", str(tmp_path / "b.db")])
    assert busy.exit_code == 1 and "pid 99999" in busy.output and "--force" in busy.output
    assert _institution_names(env) == ["甲", "乙"]

    done = runner.invoke(cli, ["restore", str(tmp_path / "b.db"), "--force"])
    assert done.exit_code == 0, done.output
    assert _institution_names(env) == ["甲"]
    [kept] = tmp_path.glob("zicha.db.before-restore-*")
    assert _institution_names(kept) == ["甲", "乙"]
    assert integrity_problem(env) is None


def test_restore_replaces_a_damaged_database(env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    _add_institution(env, "甲", "A1")
    assert runner.invoke(cli, ["backup", str(tmp_path / "b.db")]).exit_code == 0
    for suffix in ("", "-wal", "-shm"):
        Path(f"{env}{suffix}").unlink(missing_ok=True)
    env.write_bytes(b"\x00garbage" * 4096)
    status = runner.invoke(cli, ["status"])
    assert status.exit_code == 1 and "damaged" in status.output
    done = runner.invoke(cli, ["restore", str(tmp_path / "b.db")])
    assert done.exit_code == 0, done.output
    assert _institution_names(env) == ["甲"]
    assert os.path.getsize(next(tmp_path.glob("zicha.db.before-restore-*"))) == 8 * 4096


def test_default_backup_name_is_sortable() -> None:
    from bot.ops.backup import default_backup_name

    assert default_backup_name(dt.datetime(2026, 10, 27, 8, 5, 9, tzinfo=dt.timezone.utc)) == "zicha-20261027-080509.db"
