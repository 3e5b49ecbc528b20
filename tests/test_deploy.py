"""The deployment files in deploy/ say what the README promises."""

from __future__ import annotations

import configparser
import re

from bot.config import Settings
from tests.conftest import REPO

DEPLOY = REPO / "deploy"


def test_the_systemd_unit_runs_zicha_hardened_and_stops_it_with_sigterm() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "zicha.service").read_text(encoding="utf-8"))
    service = unit["Service"]
    assert service["ExecStart"].endswith("zicha run")
    assert service["EnvironmentFile"] == "/etc/zicha/zicha.env"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 25, "longer than Zicha's wait for the update in hand"
    assert service["User"] == "zicha" and service["StateDirectory"] == "zicha"
    for option in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictAddressFamilies"):
        assert option in service, option
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_dockerfile_has_fonts_a_non_root_user_and_a_volume_for_the_database() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert next(line for line in text.splitlines() if line.startswith("FROM")) == "FROM python:3.11-slim"
    assert "fonts-noto-cjk" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert 'VOLUME ["/data"]' in text and "ZICHA_DB=/data/zicha.db" in text
    assert "STOPSIGNAL SIGTERM" in text


def test_operations_settings_are_documented_for_operators() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    operations = [name for name in Settings.model_fields if name.startswith(("zicha_webhook", "zicha_log", "zicha_heartbeat"))]
    assert len(operations) == 8
    for name in operations:
        assert f"`{name.upper()}`" in readme or name.upper() in readme, name
    env_example = (DEPLOY / "zicha.env.example").read_text(encoding="utf-8")
    assert "BOT_TOKEN=" in env_example and "ZICHA_WEBHOOK_URL" in env_example


def test_systemd_accepts_the_unit(tmp_path: object) -> None:
    import shutil
    import subprocess
    from pathlib import Path

    import pytest

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = Path(str(tmp_path)) / "zicha.service"
    # The unit names the installed path; point it at an executable that exists here.
    unit.write_text((DEPLOY / "zicha.service").read_text(encoding="utf-8").replace("/opt/zicha/bin/zicha", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "zicha.service" in line]
    assert problems == [], problems
