"""Files that hold the institutions' data are the operator's alone (issue 12, defect 12):
the database, its -wal and -shm, backups and the signing keys are 0600 and their folders
0700 under a umask of 022 — what `deploy/zicha-admin` and container runtimes leave."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import open_db

REPO = Path(__file__).resolve().parents[1]
ROSTER = (
    "name,uscc,cma_cert,province,level,fields,contact_name,contact_phone\n"
    "北京某机动车检测有限公司,91110108MA01A2B32G,231100001234,北京,national,motor-vehicle,张三,13912345678\n"
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def zicha(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`zicha …` in a child process whose umask is 022, as an operator's shell has it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZICHA_", "BOT_TOKEN"))}
    env["ZICHA_DB"] = str(tmp_path / "data" / "zicha.db")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip


def test_database_backups_and_keys_are_private_under_umask_022(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    imported = zicha(tmp_path, "roster", "import", "roster.csv")
    assert imported.returncode == 0, imported.stderr
    assert mode(data / "zicha.db") == 0o600

    backups = tmp_path / "backups"
    backups.mkdir()
    backed_up = zicha(tmp_path, "backup", str(backups))
    assert backed_up.returncode == 0, backed_up.stderr
    (copy,) = backups.iterdir()
    assert mode(copy) == 0o600

    keys = zicha(tmp_path, "keys", "init")
    assert keys.returncode == 0, keys.stderr
    assert mode(data / "zicha-keys") == 0o700
    assert {p.name: mode(p) for p in (data / "zicha-keys").iterdir()} == {
        "signing-key.pem": 0o600,
        "signing-cert.pem": 0o600,
    }
    replaced = zicha(tmp_path, "keys", "init", "--force")
    assert replaced.returncode == 0 and mode(data / "zicha-keys" / "signing-cert.pem") == 0o600

    # restoring into a fresh place creates the database private too
    (data / "zicha.db").unlink()
    restored = zicha(tmp_path, "restore", str(copy))
    assert restored.returncode == 0, restored.stderr
    assert mode(data / "zicha.db") == 0o600
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "roster.csv" and mode(p) & 0o077]


def test_wal_and_shm_are_private_while_the_database_is_in_use(tmp_path: Path, umask_022: None) -> None:
    db = open_db(tmp_path / "zicha.db")
    try:
        db.execute("CREATE TABLE probe (x)")
        db.execute("INSERT INTO probe VALUES (1)")
        db.conn.commit()
        files = {p.name: mode(p) for p in tmp_path.iterdir()}
    finally:
        db.close()
    assert files == {"zicha.db": 0o600, "zicha.db-wal": 0o600, "zicha.db-shm": 0o600}


def test_a_database_left_world_readable_by_an_older_version_is_tightened(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "zicha.db"
    open_db(path).close()
    for p in (path, Path(f"{path}-wal")):
        if p.exists():
            os.chmod(p, 0o644)
    os.chmod(path, 0o644)
    db = open_db(path)
    try:
        assert mode(path) == 0o600
        assert all(mode(p) == 0o600 for p in tmp_path.iterdir())
    finally:
        db.close()


def test_digest_workbooks_wait_in_a_private_folder(tmp_path: Path, umask_022: None) -> None:
    import datetime as dt

    from bot.core.checklist import load_checklist
    from bot.core.scope import Scope
    from bot.services.digests import build_digest, digest_dir, prepare_digest_files
    from tests.conftest import SHIPPED_CHECKLIST
    from tests.regulator_fixture import build_fixture

    checklist = load_checklist(SHIPPED_CHECKLIST)
    db = open_db(tmp_path / "zicha.db")
    try:
        build_fixture(db, checklist)
        now = dt.datetime(2023, 10, 20, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        digest = build_digest(db, checklist, 9201, Scope.parse("广东"), now, None)
        xlsx, png = prepare_digest_files(db, checklist, digest, now, digest_dir(tmp_path / "zicha.db"))
    finally:
        db.close()
    assert mode(tmp_path / "digests") == 0o700 and mode(xlsx.parent) == 0o700 and xlsx.exists() and png.exists()
