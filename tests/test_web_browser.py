"""The web chat in a real browser (issue 11): Debian's headless Chromium through selenium,
on a phone-sized window (375×812), with JavaScript on and off. Nothing is downloaded: the
driver and browser paths are given explicitly, so Selenium Manager never runs."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from bot.i18n import build_i18n
from bot.web.app import build_web_app, start_web
from storage.institutions import Institution, create_invite
from tests.harness import free_port
from tests.web_support import web_settings

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
# Screenshots go to a temporary folder; ZICHA_SCREENSHOTS=docs/screenshots refreshes the README's.
SHOTS_ENV = "ZICHA_SCREENSHOTS"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()) or shutil.which("chromium") is None,
    reason="chromium and chromium-driver missing: run scripts/install-system-deps.sh",
)


def _browser(javascript: bool):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=375,812", "--lang=zh-CN"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh", "profile.managed_default_content_settings.javascript": 1 if javascript else 2})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_window_size(375, 812)
    # A click starts a page load that find_element does not wait for: wait up to 10 s for elements.
    driver.implicitly_wait(10)
    return driver


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
async def test_join_then_sign_in_again_in_a_fresh_browser(
    javascript: bool, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    code = create_invite(db, motor_lab.id)
    port = free_port()
    settings = web_settings(tmp_path / "zicha.db", zicha_public_url=f"http://127.0.0.1:{port}")
    app = build_web_app(settings, db, checklist, build_i18n("zh_CN"))
    runner = await start_web(app, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    shots = Path(os.environ[SHOTS_ENV]) if javascript and os.environ.get(SHOTS_ENV) else tmp_path
    shots.mkdir(parents=True, exist_ok=True)

    def join() -> str:
        driver = _browser(javascript)
        try:
            driver.get(f"{base}/j/{code}")
            assert motor_lab.name in driver.page_source
            driver.save_screenshot(str(shots / "web-join-confirm.png"))
            driver.find_element(By.CSS_SELECTOR, "button[value=yes]").click()
            driver.find_element(By.ID, "name").send_keys("王芳<script>")
            driver.find_element(By.ID, "email").send_keys("wang@example.com")
            driver.save_screenshot(str(shots / "web-join-name.png"))
            driver.find_element(By.CSS_SELECTOR, "form.fields button").click()
            link = driver.find_element(By.ID, "personal-link").text.strip()
            driver.save_screenshot(str(shots / "web-joined.png"))
            driver.find_element(By.CSS_SELECTOR, "a.button").click()
            assert motor_lab.uscc in driver.page_source
            driver.save_screenshot(str(shots / "web-landing.png"))
            return link
        finally:
            driver.quit()

    def sign_in(link: str) -> str:
        driver = _browser(javascript)
        try:
            driver.get(f"{base}/")
            assert "请先登录" in driver.page_source or "sign in" in driver.page_source.lower()
            driver.get(link)
            driver.find_element(By.CSS_SELECTOR, "form.answers button").click()
            WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.TAG_NAME, "progress"))
            page = driver.page_source
            driver.find_element(By.CSS_SELECTOR, "button[value=en]").click()
            # the old page's <html> goes stale while the new one loads: look again until it is the new one
            WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
            )
            english = driver.page_source
            driver.get(f"{base}/verify")
            driver.find_element(By.ID, "code").send_keys("ABCDE-12345")
            driver.find_element(By.CSS_SELECTOR, "form.fields button").click()
            WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".result"))
            driver.save_screenshot(str(shots / "web-verify.png"))
            return page + english
        finally:
            driver.quit()

    try:
        link = await asyncio.to_thread(join)
        pages = await asyncio.to_thread(sign_in, link)
        assert motor_lab.uscc in pages and "Progress of your institution" in pages
        (person,) = list(db.query("SELECT first_name FROM users WHERE channel = 'web'"))
        assert person["first_name"] == "王芳<script>"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
async def test_verify_a_signed_pdf_in_the_browser(
    javascript: bool, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    import zoneinfo

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from bot.pledge.signing import SigningSettings, identity, init_keys
    from bot.pledge.submit import produce_pdf, sign
    from tests.pledge_support import fill

    db_path = tmp_path / "zicha.db"
    ident = identity(SigningSettings(zicha_db=db_path), db_path=db_path)
    init_keys(ident)
    ws = fill(db, checklist, motor_lab, by=4242, leave=0)
    submission = sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=4242, by_name="t")
    pdf_path = tmp_path / "pledge.pdf"
    pdf_path.write_bytes(await asyncio.to_thread(produce_pdf, submission.document, build_i18n("zh_CN"), zoneinfo.ZoneInfo("Asia/Shanghai"), ident))
    port = free_port()
    app = build_web_app(web_settings(db_path), db, checklist, build_i18n("zh_CN"))
    runner = await start_web(app, "127.0.0.1", port)

    def verify() -> str:
        driver = _browser(javascript)
        try:
            driver.get(f"http://127.0.0.1:{port}/verify")
            driver.find_element(By.ID, "pdf").send_keys(str(pdf_path))
            driver.find_element(By.CSS_SELECTOR, "form.fields button").click()
            WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".result"))
            shots = Path(os.environ[SHOTS_ENV]) if javascript and os.environ.get(SHOTS_ENV) else tmp_path
            driver.save_screenshot(str(shots / "web-verify-valid.png"))
            return driver.page_source
        finally:
            driver.quit()

    try:
        page = await asyncio.to_thread(verify)
        assert "有效" in page and "result valid" in page
    finally:
        await runner.cleanup()


# --- the self-check itself, in the browser ---------------------------------------------------

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5d6c0a80000000049454e44ae426082"
)


class Page:
    """A person at the browser: presses the screen's buttons by their stable names (``data-key``,
    the engine's ``Button.key``), types into the reply field, uploads, and waits for each new page."""

    def __init__(self, driver, shots: Path) -> None:
        self.d = driver
        self.shots = shots

    def _submit(self, element) -> None:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.d.find_element(By.TAG_NAME, "html")
        element.click()

        def gone(_driver) -> bool:
            try:
                old.is_enabled()
            except WebDriverException:  # stale, or no longer in any document: the next page is there
                return True
            return False

        WebDriverWait(self.d, 60).until(gone)
        self.d.find_element(By.TAG_NAME, "main")
        assert "<script>alert" not in self.d.page_source

    def kind(self) -> str:
        from selenium.webdriver.common.by import By

        classes = self.d.find_element(By.ID, "screen").get_attribute("class") or ""
        return next(c[5:] for c in classes.split() if c.startswith("kind-"))

    def button_keys(self) -> list[str]:
        from selenium.webdriver.common.by import By

        return [b.get_attribute("data-key") or "" for b in self.d.find_elements(By.CSS_SELECTOR, "form.buttons button")]

    def press(self, key: str) -> None:
        from selenium.webdriver.common.by import By

        self._submit(self.d.find_element(By.CSS_SELECTOR, f'form.buttons button[data-key="{key}"]'))

    def type(self, text: str) -> None:
        from selenium.webdriver.common.by import By

        field = self.d.find_element(By.ID, "reply")
        field.send_keys(text)
        self._submit(self.d.find_element(By.ID, "send"))

    def upload(self, path: Path) -> None:
        from selenium.webdriver.common.by import By

        self.d.find_element(By.ID, "file").send_keys(str(path))
        self._submit(self.d.find_element(By.ID, "upload"))

    def shot(self, name: str) -> None:
        self.d.save_screenshot(str(self.shots / name))

    def position(self) -> int:
        import re

        match = re.search(r"第 (\d+)/\d+ 项", self.d.page_source)
        assert match, self.d.page_source[:2000]
        return int(match[1])


def _answer_to_the_summary(page: Page, noncompliant: tuple[int, ...], soon: str, evidence: Path | None = None) -> None:
    from selenium.webdriver.common.by import By

    seen: list[str] = []
    for _ in range(300):
        kind = page.kind()
        seen.append(kind + str(page.position() if kind != "summary" else ""))
        assert len(seen) < 3 or len(set(seen[-3:])) > 1, page.d.find_element(By.TAG_NAME, "main").text
        if kind == "summary":
            return
        keys = page.button_keys()
        if kind == "question":
            position = page.position()
            if "compliant" in keys:
                page.press("noncompliant" if position in noncompliant else "compliant")
            elif "yes" in keys:
                page.press("yes")
            else:
                page.type("13812345678" if "电话" in page.d.page_source else "王五")
        elif kind == "followup-problem":
            if evidence is not None:
                page.shot("web-chat-followup.png")
                page.upload(evidence)
                evidence = None
            page.type("样品留样记录缺失 <script>alert(1)</script>")
        elif kind == "followup-measure":
            page.type("补充留样记录，组织全员培训")
        elif kind == "followup-status":
            page.press("rect:in_progress")
        elif kind == "followup-target_date":
            page.type(soon)
        else:
            raise AssertionError(f"unexpected screen {kind}")
    raise AssertionError("never reached the summary")


def _sign_download_and_verify(page: Page, base: str, downloads: Path) -> bytes:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page.press("pledge:start")
    assert page.kind() == "pledge-name"
    page.type("张三")
    page.press("pledge:role:legal_representative")
    assert page.kind() == "pledge-confirm"
    page.press("pledge:sign")
    assert page.kind() == "pledge-signed" and "张三" in page.d.page_source
    page.shot("web-chat-signed.png")
    page.d.find_element(By.ID, "pdf-link").click()
    WebDriverWait(page.d, 60).until(lambda d: any(p.suffix == ".pdf" for p in downloads.iterdir()))
    (pdf,) = [p for p in downloads.iterdir() if p.suffix == ".pdf"]
    content = pdf.read_bytes()
    assert content.startswith(b"%PDF-")
    page.d.get(f"{base}/verify")
    page.d.find_element(By.ID, "pdf").send_keys(str(pdf))
    page.d.find_element(By.CSS_SELECTOR, "form.fields button").click()
    WebDriverWait(page.d, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".result"))
    assert "result valid" in page.d.page_source
    return content


def _browser_with_downloads(javascript: bool, downloads: Path):
    driver = _browser(javascript)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def _join_in(driver, base: str, code: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/j/{code}")
    driver.find_element(By.CSS_SELECTOR, "button[value=yes]").click()
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.CSS_SELECTOR, "form.fields button").click()
    driver.find_element(By.ID, "personal-link")
    driver.get(f"{base}/")
    driver.find_element(By.ID, "open-chat").click()
    driver.find_element(By.ID, "screen")


@pytest.mark.slow
async def test_the_whole_self_check_in_a_phone_browser_sign_download_and_verify(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    import datetime as dt

    from bot.pledge.signing import SigningSettings, identity, init_keys

    db_path = tmp_path / "zicha.db"
    init_keys(identity(SigningSettings(zicha_db=db_path), db_path=db_path))
    code = create_invite(db, motor_lab.id)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = build_web_app(web_settings(db_path, zicha_public_url=base), db, checklist, build_i18n("zh_CN"))
    runner = await start_web(app, "127.0.0.1", port)
    shots = Path(os.environ[SHOTS_ENV]) if os.environ.get(SHOTS_ENV) else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    photo = tmp_path / "留样记录.png"
    photo.write_bytes(PNG_1PX)
    soon = (dt.date.today() + dt.timedelta(days=40)).isoformat()

    def run() -> bytes:
        driver = _browser_with_downloads(True, downloads)
        page = Page(driver, shots)
        try:
            _join_in(driver, base, code, "王芳")
            assert page.kind() == "question" and page.position() == 1
            page.press("yes")
            page.type("王五")
            page.type("13812345678")
            assert page.position() == 4
            page.press("nav:guide")
            page.shot("web-chat-question.png")
            page.press("nav:guide")
            _answer_to_the_summary(page, noncompliant=(4, 12), soon=soon, evidence=photo)
            # an edited answer: open item 12 from the review, compliant instead
            page.press("nav:review")
            key = next(k for k in page.button_keys() if k.startswith("nav:open:"))
            page.press(key)
            page.press("compliant")
            driver.get(f"{base}/chat")
            _answer_to_the_summary(page, noncompliant=(), soon=soon)
            page.shot("web-chat-summary.png")
            return _sign_download_and_verify(page, base, downloads)
        finally:
            driver.quit()

    try:
        content = await asyncio.to_thread(run)
        assert content.startswith(b"%PDF-")
        answers = {r["item_id"]: r for r in db.query("SELECT item_id, value, answered_by FROM answers")}
        assert len(answers) == 44 and all(a["answered_by"] < 0 for a in answers.values())
        assert [a["value"] for a in answers.values()].count("noncompliant") == 1  # one of two edited to compliant
        (evidence,) = list(db.query("SELECT file_name, mime_type, kind FROM evidence"))
        assert evidence == {"file_name": "留样记录.png", "mime_type": "image/png", "kind": "document"}
        assert next(iter(db.query("SELECT count(*) AS n FROM submissions WHERE superseded_at IS NULL")))["n"] == 1
    finally:
        await runner.cleanup()


@pytest.mark.slow
async def test_key_steps_with_javascript_off(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    """Plain forms only: answer the last items (a non-compliance with its follow-ups and a
    photo), sign, download the PDF and verify it."""
    import datetime as dt

    from bot.pledge.signing import SigningSettings, identity, init_keys
    from tests.pledge_support import fill

    db_path = tmp_path / "zicha.db"
    init_keys(identity(SigningSettings(zicha_db=db_path), db_path=db_path))
    fill(db, checklist, motor_lab, by=4242, leave=3)  # colleagues answered all but the last three
    code = create_invite(db, motor_lab.id)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = build_web_app(web_settings(db_path, zicha_public_url=base), db, checklist, build_i18n("zh_CN"))
    runner = await start_web(app, "127.0.0.1", port)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG_1PX)
    soon = (dt.date.today() + dt.timedelta(days=40)).isoformat()

    def run() -> bytes:
        driver = _browser_with_downloads(False, downloads)
        page = Page(driver, tmp_path)
        try:
            _join_in(driver, base, code, "李雷")
            assert page.kind() == "question" and page.position() == 42
            _answer_to_the_summary(page, noncompliant=(43,), soon=soon, evidence=photo)
            return _sign_download_and_verify(page, base, downloads)
        finally:
            driver.quit()

    try:
        assert (await asyncio.to_thread(run)).startswith(b"%PDF-")
        assert next(iter(db.query("SELECT count(*) AS n FROM evidence")))["n"] == 1
    finally:
        await runner.cleanup()
