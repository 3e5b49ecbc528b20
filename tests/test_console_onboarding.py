"""``zicha chat`` over the engine: a newcomer joins with an invite code, a regulator
verifies a signed pledge, keys typed as a user types them; and the console is a channel of
its own, loading no aiogram."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.console import CONSOLE_USER_ID
from bot.core.checklist import load_checklist
from bot.core.scope import Scope
from bot.demo import DEMO_ROW
from bot.pledge import document as doc
from bot.pledge.submit import sign
from storage.db import open_db
from storage.institutions import create_invite, get_institution_by_uscc, get_membership, upsert_institutions
from storage.regulators import add_regulator
from tests.conftest import REPO, SHIPPED_CHECKLIST
from tests.pledge_support import fill


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "zicha.db"))
    for name in ("BOT_TOKEN", "ZICHA_LOCALE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "zicha.db"


def test_a_newcomer_joins_with_an_invite_code_and_answers(env: Path) -> None:
    db = open_db(env)
    upsert_institutions(db, [DEMO_ROW])
    institution = get_institution_by_uscc(db, DEMO_ROW.uscc)
    assert institution is not None
    code = create_invite(db, institution.id, max_uses=1)
    db.close()
    # Not yet invited: told how to join; a wrong code; the right one, declined, then accepted.
    keys = f"/start 1234\n/start {code}\n2\n/start {code}\n1\n1\nq\n"
    result = CliRunner().invoke(cli, ["chat"], input=keys)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "本服务仅供受邀人员使用" in out and "邀请码无效" in out
    assert out.count("[1] 是，这是我的机构  [2] 否") == 2
    assert "（已更新） 未做任何更改。" in out
    joined = out.split("（已更新） 您已登记为 演示检验检测有限公司 的工作人员。现在开始自查。")[1]
    assert "第 1/46 项" in joined and "  (欢迎！)" in joined and "（已更新） 机构基本信息\n第 2/46 项" in joined
    db = open_db(env)
    member = get_membership(db, CONSOLE_USER_ID)
    assert member is not None and member.id == institution.id
    assert [(r["item_id"], r["value"]) for r in db["answers"].rows] == [("header-details", "yes")]


def test_a_regulator_verifies_a_signed_pledge_in_the_console(env: Path, tmp_path: Path) -> None:
    db = open_db(env)
    upsert_institutions(db, [DEMO_ROW])
    institution = get_institution_by_uscc(db, DEMO_ROW.uscc)
    assert institution is not None
    ws = fill(db, load_checklist(SHIPPED_CHECKLIST), institution, by=77, leave=0)
    code = doc.format_code(sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=77, by_name="张三").verification_code)
    add_regulator(db, CONSOLE_USER_ID, Scope.parse("national"))
    db.close()
    result = CliRunner().invoke(cli, ["chat"], input=f"/verify\n/verify {code}\n/status\nq\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("已创建用于签署承诺书的自签名密钥") or "自查助手终端对话" in out
    assert "自查助手（监管人员）" in out  # /start of a regulator who is not staff
    assert "请发送 /verify 加承诺书上印的核验码" in out
    assert f"已签署的承诺书（核验码 {code}）" in out and "✅ 这是该机构当前有效的签署记录。" in out
    assert "机构数：1" in out and "已签署：1" in out


def test_the_console_loads_no_aiogram() -> None:
    code = "import sys, bot.console; print(sorted(m for m in sys.modules if m.startswith(('aiogram', 'bot.telegram'))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
