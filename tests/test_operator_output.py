"""What an operator gets from the command line and the digest (issue 13, items 16–20, 22):
plain-text digests, no temporary folders left behind, a warning for link-less invites,
the signing key kept out of a checkout, local-time backup names, a readable chart."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import tempfile
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.core.checklist import Checklist
from bot.core.roster import RosterRow
from bot.core.scope import Scope
from bot.core.uscc import make_uscc
from storage.db import open_db
from storage.institutions import ensure_invites, upsert_institutions
from storage.regulators import add_regulator
from tests.conftest import REPO
from tests.regulator_fixture import build_fixture

if TYPE_CHECKING:
    from bot.reports.status import Status

HOSTILE = "<B&R>检测有限公司"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checklist: Checklist) -> Path:
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "ZICHA_TIMEZONE", "ZICHA_LOCALE", "ZICHA_BOT_USERNAME", "ZICHA_KEYS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    db = open_db(db_path)
    build_fixture(db, checklist)
    upsert_institutions(
        db,
        [RosterRow(9, HOSTILE, make_uscc("91440100MA0000099"), "230000000099", "广东", "national", ("food",), "", "")],
    )
    add_regulator(db, 9101, Scope.parse("广东"), "广东省局")
    db.close()
    return db_path


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temporary folder, as the code sees it, made empty and private."""
    folder = tmp_path / "systmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_digest_dry_run_prints_plain_text_and_leaves_no_temporary_folder(
    env: Path, private_tmp: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["digest", "--dry-run", "--final"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "自查最终简报 · 广东" in out and HOSTILE in out
    assert "<b>" not in out and "</b>" not in out and "<code>" not in out and "&lt;" not in out and "&amp;" not in out
    assert re.search(r"^\d+ × \d+\. ", out, re.M)  # the most frequent items, by number
    assert "-o DIR keeps them" in out and re.search(r"zicha-\d{4}-\d\d-\d\d\.xlsx \([\d,]+ bytes\)", out)
    assert list(private_tmp.iterdir()) == []  # built, then removed with its folder
    # -o keeps the files where the operator asked
    kept = tmp_path / "kept"
    result = CliRunner().invoke(cli, ["digest", "--dry-run", "--final", "-o", str(kept)])
    assert result.exit_code == 0, result.output
    files = sorted(p.suffix for p in kept.rglob("*") if p.is_file())
    assert files == [".png", ".xlsx"] and str(kept) in result.output
    assert list(private_tmp.iterdir()) == []
    db = open_db(env)
    try:
        assert db.execute("SELECT COUNT(*) FROM digest_snapshots").fetchone()[0] == 0
    finally:
        db.close()


def test_invites_csv_without_a_bot_username_warns_how_to_set_it(env: Path) -> None:
    db = open_db(env)
    try:
        ensure_invites(db, 5)
    finally:
        db.close()
    result = CliRunner().invoke(cli, ["invites", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))  # the CSV itself stays clean
    assert rows and all(r["link"] == "" and r["code"] for r in rows)
    assert "link column is empty" in result.stderr
    assert "--bot-username" in result.stderr and "ZICHA_BOT_USERNAME" in result.stderr
    named = CliRunner().invoke(cli, ["invites", "--format", "csv", "--bot-username", "zicha_bot"])
    assert named.stderr == "" and all(
        r["link"].startswith("https://t.me/zicha_bot?start=") for r in csv.DictReader(io.StringIO(named.stdout))
    )


# --- the signing key -------------------------------------------------------------------


def keys_env(db_path: Path, xdg: Path, **extra: str) -> dict[str, str | None]:
    return {"ZICHA_DB": str(db_path), "XDG_DATA_HOME": str(xdg), "ZICHA_KEYS_DIR": None, **extra}


def test_the_signing_key_stays_out_of_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    checkout = tmp_path / "zicha"
    (checkout / ".git").mkdir(parents=True)  # a clone: the README's `zicha chat --demo` puts zicha.db here
    xdg = tmp_path / "xdg"
    result = CliRunner().invoke(cli, ["keys", "init"], env=keys_env(checkout / "zicha.db", xdg))
    assert result.exit_code == 0, result.output
    key = xdg / "zicha" / "keys" / "signing-key.pem"
    assert key.is_file() and (key.stat().st_mode & 0o077) == 0 and str(key) in result.output
    assert not (checkout / "zicha-keys").exists()
    # a deployment (the database outside any checkout) keeps the key with its data, as before
    deployed = tmp_path / "var" / "lib" / "zicha"
    deployed.mkdir(parents=True)
    result = CliRunner().invoke(cli, ["keys", "init"], env=keys_env(deployed / "zicha.db", xdg))
    assert result.exit_code == 0 and (deployed / "zicha-keys" / "signing-key.pem").is_file()
    # ZICHA_KEYS_DIR chooses the folder
    chosen = tmp_path / "secrets"
    result = CliRunner().invoke(
        cli, ["keys", "init"], env=keys_env(checkout / "zicha.db", xdg, ZICHA_KEYS_DIR=str(chosen))
    )
    assert result.exit_code == 0 and (chosen / "signing-cert.pem").is_file()


def test_keys_already_next_to_the_database_in_a_checkout_are_still_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.pledge.signing import SigningSettings, identity, init_keys

    monkeypatch.chdir(tmp_path)
    checkout = tmp_path / "zicha"
    (checkout / ".git").mkdir(parents=True)
    legacy = checkout / "zicha-keys"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ZICHA_KEYS_DIR", raising=False)
    # made by an earlier version, which always put them next to the database
    from bot.pledge.signing import CERT_FILE, KEY_FILE, Identity

    init_keys(Identity(legacy / KEY_FILE, legacy / CERT_FILE, None, False))
    before = (legacy / KEY_FILE).read_bytes()
    ident = identity(SigningSettings(_env_file=None, zicha_db=checkout / "zicha.db"), db_path=checkout / "zicha.db")  # type: ignore[call-arg]  # pydantic-settings' own init option
    assert ident.key == legacy / KEY_FILE
    result = CliRunner().invoke(cli, ["keys", "init"], env={"ZICHA_DB": str(checkout / "zicha.db")})
    assert result.exit_code == 0 and "already exists" in result.output and str(legacy / KEY_FILE) in result.output
    assert (legacy / KEY_FILE).read_bytes() == before
    assert not (tmp_path / "xdg" / "zicha").exists()


def test_the_key_folder_is_git_ignored() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("zicha-keys/signing-key.pem", "deploy/zicha-keys/signing-cert.pem"):
        assert subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", path], check=False).returncode == 0, path


# --- backups -----------------------------------------------------------------------------


def test_backup_names_use_the_configured_time_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)
    open_db(db_path).close()
    folder = tmp_path / "backups"
    folder.mkdir()
    zone = zoneinfo.ZoneInfo("Pacific/Kiritimati")  # UTC+14: never the UTC clock time
    env = {"ZICHA_DB": str(db_path), "ZICHA_TIMEZONE": "Pacific/Kiritimati"}
    before = dt.datetime.now(zone).replace(microsecond=0)
    result = CliRunner().invoke(cli, ["backup", str(folder)], env=env)
    after = dt.datetime.now(zone)
    assert result.exit_code == 0, result.output
    (copy,) = folder.iterdir()
    stamp = dt.datetime.strptime(copy.name, "zicha-%Y%m%d-%H%M%S.db").replace(tzinfo=zone)
    assert before <= stamp <= after
    # restore keeps the replaced database under a local-time name too
    result = CliRunner().invoke(cli, ["restore", str(copy), "--force"], env=env)
    assert result.exit_code == 0, result.output
    (safety,) = tmp_path.glob("zicha.db.before-restore-*")
    kept = dt.datetime.strptime(safety.name, "zicha.db.before-restore-%Y%m%d-%H%M%S").replace(tzinfo=zone)
    assert before <= kept <= dt.datetime.now(zone)


# --- the digest chart --------------------------------------------------------------------


def _report(provinces: int) -> object:
    from bot.reports.status import StatusReport, Tally

    names = ["北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江", "安徽", "福建",
             "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆", "四川", "贵州", "云南", "西藏",
             "陕西", "甘肃", "青海", "宁夏", "新疆", "新疆生产建设兵团"]  # fmt: skip
    by_province = {}
    for n, name in enumerate(names[:provinces]):
        t = Tally()
        t.add(_status("signed"), False, n % 7 + 1)
        t.add(_status("finished"), False, n % 3)
        t.add(_status("in_progress"), False, 2)
        t.add(_status("not_started"), False, n % 5)
        by_province[name] = t
    return StatusReport(Scope(national=True), None, None, False, [], by_province=by_province)  # type: ignore[arg-type]


def _status(value: str) -> Status:
    from bot.reports.status import Status

    return Status(value)


@pytest.mark.parametrize("provinces", [3, 32])
def test_the_chart_runs_to_100_percent_and_nothing_overlaps(provinces: int, tmp_path: Path) -> None:
    from bot.reports import chart

    png = io.BytesIO()
    fig = chart.completion_figure(_report(provinces), png=png)  # type: ignore[arg-type]
    (tmp_path / f"chart-{provinces}.png").write_bytes(png.getvalue())
    assert png.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 100.0)
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "100%"
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    font = chart.cjk_font()
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": [font, "DejaVu Sans"]} if font else {}):
        check_layout(fig, FigureCanvasAgg(fig))


def check_layout(fig: object, canvas: object) -> None:
    canvas.draw()  # type: ignore[attr-defined]  # the figure as saved: same size, dpi, fonts and layout
    renderer = canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]  # type: ignore[attr-defined]
    legend = fig.legends[0].get_window_extent(renderer)  # type: ignore[attr-defined]
    label = ax.xaxis.label.get_window_extent(renderer)
    ticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
    figure = fig.bbox  # type: ignore[attr-defined]
    assert not legend.overlaps(label) and legend.y1 <= label.y0  # the legend sits below the axis label
    assert not any(legend.overlaps(t) for t in ticks)
    for box in (legend, label, ax.title.get_window_extent(renderer)):
        assert figure.x0 <= box.x0 and box.x1 <= figure.x1 and figure.y0 <= box.y0 and box.y1 <= figure.y1
    counts = fig.axes[1]  # type: ignore[attr-defined]  # the share and counts on the right, inside the figure too
    for t in counts.get_yticklabels():
        box = t.get_window_extent(renderer)
        assert box.x1 <= figure.x1 and re.fullmatch(r"\d+%  \(\d+/\d+\)", t.get_text())
