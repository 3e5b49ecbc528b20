"""The web chat in a real browser (issue 11): Debian's headless Chromium through selenium,
on a phone-sized window (375×812), with JavaScript on and off. Nothing is downloaded: the
driver and browser paths are given explicitly, so Selenium Manager never runs."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from bot.i18n import build_i18n
from bot.web.app import build_web_app, start_web
from storage.db import query_rows
from storage.institutions import Institution, create_invite
from tests.web_support import web_settings

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
# Screenshots go to a temporary folder; ZICHA_SCREENSHOTS=docs/screenshots refreshes the README's.
SHOTS_ENV = "ZICHA_SCREENSHOTS"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()) or shutil.which("chromium") is None,
    reason="chromium and chromium-driver missing: run scripts/install-system-deps.sh",
)


def _browser(javascript: bool):  # type: ignore[no-untyped-def]
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
async def test_join_then_sign_in_again_in_a_fresh_browser(
    javascript: bool, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    code = create_invite(db, motor_lab.id)
    port = _free_port()
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
        (person,) = query_rows(db, "SELECT first_name FROM users WHERE channel = 'web'")
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
    port = _free_port()
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
