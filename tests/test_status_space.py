"""`zicha status` warns before the disk fills up or the database grows past a limit
(a "warn" distinct from "fail": exit 0), and fails when the disk is all but full."""

from __future__ import annotations

import json
import re
from collections import namedtuple
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.ops.health import FAIL, OK, WARN, StorageLimits, check_storage
from storage.db import open_db, utcnow

Usage = namedtuple("Usage", "total used free")
MB = 1024 * 1024


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(path))
    for name in ("ZICHA_DISK_WARN_MB", "ZICHA_DISK_FAIL_MB", "ZICHA_DB_WARN_MB"):
        monkeypatch.delenv(name, raising=False)
    db = open_db(path)
    db["heartbeat"].insert(
        {"role": "bot", "pid": 4321, "mode": "polling", "started_at": utcnow(), "beat_at": utcnow(), "scheduler": "running"}
    )
    db["evidence_blob_filler"].insert({"x": "y" * 200_000})  # ~200 kB of database
    db.close()
    return path


def status(*args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["status", *args], env=env)
    return result.exit_code, result.output


def test_status_warns_before_the_disk_or_the_database_reach_their_limits(db_path: Path) -> None:
    code, output = status()
    assert code == 0 and "Zicha healthy (" in output, output
    assert re.search(r"\n  disk +ok: [\d,]+ MB free in ", output) and re.search(r"\n  db size +ok: 0\.\d MB", output), output

    # Less free space than ZICHA_DISK_WARN_MB: a warning, not a failure.
    code, output = status(ZICHA_DISK_WARN_MB=str(10**9))
    assert code == 0, output
    assert "Zicha healthy, 1 warning(s)" in output and re.search(r"disk +warn:", output)
    assert "below ZICHA_DISK_WARN_MB (1e+09 MB)" in output and "make room" in output

    # The database larger than ZICHA_DB_WARN_MB.
    code, output = status("--json", ZICHA_DB_WARN_MB="0.1")
    report = json.loads(output)
    assert code == 0 and report["healthy"] is True and report["warnings"] == ["db size"]
    assert report["checks"]["db size"]["status"] == "warn" and "ZICHA_DB_WARN_MB (0.1 MB)" in report["checks"]["db size"]["detail"]

    # Below ZICHA_DISK_FAIL_MB: unhealthy, exit 1, saying what to do.
    code, output = status(ZICHA_DISK_WARN_MB=str(10**9), ZICHA_DISK_FAIL_MB=str(10**9))
    assert code == 1 and "UNHEALTHY" in output and re.search(r"disk +fail:", output) and "writes will fail soon" in output

    # A wrong threshold is refused with the variable's name.
    code, output = status(ZICHA_DISK_WARN_MB="-5")
    assert code == 1 and "ZICHA_DISK_WARN_MB" in output


def test_storage_check_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "zicha.db"
    path.write_bytes(b"x" * (3 * MB))
    (tmp_path / "zicha.db-wal").write_bytes(b"x" * MB)
    limits = StorageLimits(path, disk_warn_mb=500, disk_fail_mb=50, db_warn_mb=3.5)
    disk, size = check_storage(limits, disk_usage=lambda _: Usage(10**12, 0, 600 * MB))
    assert disk.status == OK and size.status == WARN and "4.0 MB" in size.detail  # the WAL counts too
    disk, _ = check_storage(limits, disk_usage=lambda _: Usage(10**12, 0, 400 * MB))
    assert disk.status == WARN and "400 MB free" in disk.detail
    disk, _ = check_storage(limits, disk_usage=lambda _: Usage(10**12, 0, 10 * MB))
    assert disk.status == FAIL


def test_an_unreadable_free_space_is_a_failure(tmp_path: Path) -> None:
    def broken(_: Path) -> Usage:
        raise PermissionError("denied")

    disk, _ = check_storage(StorageLimits(tmp_path / "zicha.db"), disk_usage=broken)
    assert disk.status == FAIL and "denied" in disk.detail


def test_upload_and_space_settings_are_documented_for_operators() -> None:
    from bot.config import Settings
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = (REPO / "deploy" / "zicha.env.example").read_text(encoding="utf-8")
    names = [n.upper() for n in Settings.model_fields if n.startswith(("zicha_upload_", "zicha_disk_", "zicha_db_"))]
    assert len(names) == 9
    for name in names:
        assert f"`{name}`" in readme and f"# {name}=" in example, name
