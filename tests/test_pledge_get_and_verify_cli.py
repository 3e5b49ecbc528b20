"""`zicha pledge get`, `zicha verify` without tracebacks, read commands that never create an
empty database, and configuration errors that stand alone on the terminal: run as an
operator runs them (subprocesses, so stderr is what a terminal shows)."""

from __future__ import annotations

import os
import subprocess
import sys
import zoneinfo
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.core.checklist import Checklist
from bot.i18n import build_i18n
from bot.pledge.signing import SigningSettings, identity, init_keys
from bot.pledge.submit import produce_pdf, sign
from bot.selfcheck import open_workspace
from storage import pledges as store
from storage.institutions import Institution
from tests.harness import free_port
from tests.pledge_support import fill

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
USER = 4343


def zicha(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`zicha ARGS` in a child process: stderr is exactly what a terminal would show."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZICHA_", "BOT_TOKEN", "TELEGRAM_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd, env=base | env, timeout=120
    )


def zicha_here(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Result:
    """`zicha ARGS` through click's runner (faster), with stdout and stderr apart."""
    monkeypatch.chdir(cwd)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def signed(db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution, tmp_path: Path) -> store.Submission:
    """The food lab's self-check, signed; its PDF kept (as the bot keeps it)."""
    ws = fill(db, checklist, food_lab, by=USER, leave=0)
    submission = sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=USER, by_name="t")
    ident = identity(SigningSettings(zicha_db=tmp_path / "zicha.db"), db_path=tmp_path / "zicha.db")
    init_keys(ident)
    store.save_pdf(db, submission.id, produce_pdf(submission.document, build_i18n("zh_CN"), TZ, ident), "x.pdf")
    return submission


def test_pledge_get_writes_the_signed_pdf_that_verify_accepts(
    db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution, signed: store.Submission, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"ZICHA_DB": str(tmp_path / "zicha.db")}
    done = zicha_here("pledge", "get", food_lab.uscc, "-o", "missing/pledge.pdf", cwd=tmp_path, monkeypatch=monkeypatch, **env)
    assert done.exit_code == 1 and "Cannot write" in done.stderr and "Traceback" not in done.stderr  # no folder "missing"
    done = zicha_here("pledge", "get", food_lab.uscc.lower(), "-o", "pledge.pdf", cwd=tmp_path, monkeypatch=monkeypatch, **env)
    assert done.exit_code == 0, done.stderr
    assert "Wrote pledge.pdf" in done.stdout and f"submission #{signed.id} (current)" in done.stdout
    assert (tmp_path / "pledge.pdf").read_bytes() == bytes(store.get_pdf(db, signed.id)["content"])
    verified = zicha_here("verify", "pledge.pdf", cwd=tmp_path, monkeypatch=monkeypatch, **env)
    assert verified.exit_code == 0 and "valid" in verified.stdout, verified.stdout + verified.stderr

    # Without -o: the PDF's own name, here.
    done = zicha_here("pledge", "get", food_lab.uscc, cwd=tmp_path, monkeypatch=monkeypatch, **env)
    assert done.exit_code == 0 and (tmp_path / f"pledge-{food_lab.uscc}-{signed.verification_code}.pdf").is_file()

    # Revised (the signature voided): no current pledge, but the earlier one by its number.
    assert store.supersede(db, signed.id, by=USER)
    done = zicha_here("pledge", "get", food_lab.uscc, cwd=tmp_path, monkeypatch=monkeypatch, **env)
    assert done.exit_code == 1 and "has no signed pledge" in done.stderr and "--submission N" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    done = zicha_here("pledge", "get", food_lab.uscc, "--submission", str(signed.id), "-o", "old.pdf", cwd=tmp_path, monkeypatch=monkeypatch, **env)
    assert done.exit_code == 0 and "(superseded)" in done.stdout, done.stderr
    done = zicha_here("pledge", "get", food_lab.uscc, "--submission", "99", cwd=tmp_path, monkeypatch=monkeypatch, **env)
    assert done.exit_code == 1 and "has no submission #99" in done.stderr


def test_pledge_get_names_an_unknown_uscc_and_an_unsigned_institution(
    db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution, motor_lab: Institution, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"ZICHA_DB": str(tmp_path / "zicha.db")}
    done = zicha_here("pledge", "get", "91110108MA01999999", cwd=tmp_path, monkeypatch=monkeypatch, **env)
    assert done.exit_code == 1 and done.stderr == "Error: No institution with USCC 91110108MA01999999.\n"
    open_workspace(db, checklist, motor_lab)
    done = zicha_here("pledge", "get", motor_lab.uscc, cwd=tmp_path, monkeypatch=monkeypatch, **env)
    assert done.exit_code == 1 and f"{motor_lab.name} ({motor_lab.uscc}) has no signed pledge" in done.stderr
    assert not list(tmp_path.glob("*.pdf"))


def test_verify_says_one_sentence_without_a_traceback_for_an_untrusted_certificate(
    db: sqlite_utils.Database, signed: store.Submission, tmp_path: Path
) -> None:
    other = identity(SigningSettings(zicha_db=tmp_path / "other" / "z.db"), db_path=tmp_path / "other" / "z.db")
    init_keys(other)
    (tmp_path / "foreign.pdf").write_bytes(produce_pdf(signed.document, build_i18n("zh_CN"), TZ, other))
    done = zicha("verify", "foreign.pdf", cwd=tmp_path, ZICHA_DB=str(tmp_path / "zicha.db"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "✗ foreign.pdf: NOT VALID: the signature was made with a certificate this deployment does not trust "
        "(Organization: Zicha, Common Name: Zicha pledge signing (self-signed))"
    ], done.stderr
    assert "Traceback" not in done.stdout and "Validation error" not in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "some.pdf"],
        ["export", "--scope", "national", "-o", "out.xlsx"],
        ["digest", "--dry-run"],
        ["status"],
        ["pledge", "get", "91110108MA01A2B32G"],
        ["remind", "--dry-run", "--at", "2023-10-20 09:00"],
        ["broadcast", "--scope", "national", "--text", "hello", "--yes", "--queue-only"],
    ],
)
def test_read_commands_refuse_a_missing_database_instead_of_creating_one(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "some.pdf").write_bytes(b"%PDF-1.7")
    nowhere = tmp_path / "zicha-typo.db"
    done = zicha_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, ZICHA_DB=str(nowhere))
    assert done.exit_code == 1
    assert done.stderr == f"Error: No database at {nowhere}: check ZICHA_DB, or start the bot once to create it.\n"
    assert not (tmp_path / "zicha-typo.db").exists() and not (tmp_path / "out.xlsx").exists()


def test_a_startup_error_stands_alone_on_the_terminal(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = zicha("run", cwd=tmp_path, BOT_TOKEN="42:TEST", TELEGRAM_API_URL=url, ZICHA_DB=str(tmp_path / "zicha.db"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: Cannot reach the Telegram Bot API at {url}: check this server's network, firewall or proxy, "
        "or TELEGRAM_API_URL."
    ], done.stderr
    assert done.stdout == ""
