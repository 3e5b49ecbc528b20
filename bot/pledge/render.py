"""The pledge summary as HTML (jinja2, autoescaped) and as PDF (WeasyPrint).

The PDF is rendered from the stored canonical document alone, so the same submission
always gives the same content. Every string from users or data files reaches the page
through jinja's autoescaping; WeasyPrint may load nothing but ``data:`` URLs.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

import jinja2
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from markupsafe import Markup, escape

from bot.i18n import format_date, format_datetime, format_number
from bot.pledge.document import canonical_json, digest, format_code, information_count
from bot.pledge.fonts import NO_CJK_FONT, FontMissing, cjk_font_available

ATTACHMENT_NAME = "zicha-submission.json"
# Fonts tried in order; the first with Chinese glyphs wins (fonts-noto-cjk provides both Noto ones).
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Serif CJK SC", "Source Han Serif SC", "Source Han Sans SC", "WenQuanYi Zen Hei")


def _url_fetcher() -> Any:
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bot.pledge", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def labels() -> dict[str, str]:
    """The document's fixed words, in the current gettext locale. Kept in Python (not in
    the template) so they are extracted and translated with the rest of the UI."""
    return {
        "institution": _("Institution"),
        "institution_name": _("Name of the institution"),
        "uscc": _("Unified social credit code"),
        "cma_cert": _("CMA certificate"),
        "fields": _("Fields"),
        "level": _("Level"),
        "province": _("Province"),
        "national": _("national"),
        "provincial": _("provincial"),
        "pledger": _("Institution making the pledge (seal)"),
        "seal": _("(seal of the institution)"),
        "hand_signature": _("Signature of the legal representative or the authorized top manager"),
        "hand_date": _("Date:"),
        "date_blank": _("(year) (month) (day)"),
        "e_record": _("Electronic signature record"),
        "annex": _("Annex: self-check results"),
        "checklist_title": _("Self-check table"),
        "checklist_id": _("Self-check table ID"),
        "checklist_version": _("Self-check table version"),
        "pledge_version": _("Pledge version"),
        "results": _("Self-check results"),
        "number": _("No."),
        "item": _("Item"),
        "answer": _("Answer"),
        "rectification": _("Problem and rectification"),
        "problem": _("Problem"),
        "measure": _("Rectification measure"),
        "status": _("Status"),
        "correction": _("Correction"),
        "totals": _("Totals"),
        "items_total": _("Items in total"),
        "information": _("Information items"),
        "compliant": _("Compliant"),
        "noncompliant": _("Non-compliant"),
        "na": _("Not applicable"),
        "sum_rule": _("Items in total = information items + compliant + non-compliant + not applicable."),
        "affirmative": _("Yes"),
        "negative": _("No"),
        "file": _("File uploaded"),
        "yes": _("Yes, correct"),
        "no": _("No, needs correction"),
        "open_rectifications": _("Open rectifications"),
        "done": _("Rectified"),
        "in_progress": _("Rectification in progress"),
        "target_date": _("to be completed by {date}"),
        "signer": _("Signed by"),
        "role": _("Role"),
        "legal_representative": _("Legal representative"),
        "top_manager": _("Top manager (authorized)"),
        "signed_at": _("Date and time"),
        "pressed_by": _("Confirmed in Telegram by"),
        "verification": _("Verification"),
        "submission": _("Submission"),
        "code": _("Verification code"),
        "sha256": _("SHA-256 of the submission"),
        "how_to_verify": _(
            "This PDF is digitally signed. Regulators can check it with the command zicha verify, or by sending "
            "/verify and the code above to the Zicha bot."
        ),
        "translation": _("Translation for reference only; the Chinese text above prevails."),
        "page_of": _("Page {page} of {pages}"),
    }


# The numbering of an official Chinese list: 一、二、三、…
_CN_DIGITS = "零一二三四五六七八九"


def cn_numeral(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十, 99 → 九十九 (a pledge has far fewer items)."""
    if n < 10:
        return _CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _CN_DIGITS[tens]) + "十" + (_CN_DIGITS[ones] if ones else "")


# Characters a line may break between without a space: Chinese, Japanese and Korean script
# and the full-width forms. A part holding them is prose, not a code.
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")


def nobreak(text: str | None) -> Markup:
    """Text whose words (numbers, codes, phone numbers) must not wrap inside: each
    space-separated part is kept whole; a part too long for a line may still wrap, and so
    may one in Chinese (which has no spaces: an answer kept whole overflowed its column)."""
    parts = (text or "").split(" ")
    return Markup(" ").join(
        Markup('<span class="nw">{}</span>').format(part) if len(part) <= 24 and not _CJK.search(part) else escape(part)
        for part in parts
    )


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def page_counter(template: str) -> str:
    """``Page {page} of {pages}`` as CSS content with the page counters."""
    before, _sep, rest = template.partition("{page}")
    middle, _sep, after = rest.partition("{pages}")
    return f"{_css_string(before)} counter(page) {_css_string(middle)} counter(pages) {_css_string(after)}"


def qr_svg(data: str) -> str:
    """A QR code as an SVG data URL (vector: sharp at any zoom, a few kB)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg = image.to_string()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def qr_payload(document: Mapping[str, Any]) -> str:
    """What the QR code holds: enough to look the submission up and to check the digest."""
    return f"ZICHA-VERIFY:{format_code(document['verification_code'])}:{document['submission']}:{digest(document)}"


def render_html(document: Mapping[str, Any], i18n: I18n, tz: zoneinfo.ZoneInfo) -> str:
    """The document in Chinese (its authoritative language), with the English translation
    of the pledge after it when the signer used English. Documents of format 1 (signed
    in one language throughout) still render, in that language."""
    language = document.get("language") or document["locale"]
    translation = document.get("translation")
    with i18n.context():
        with i18n.use_locale(language):
            words = labels()
            footer_pages = page_counter(words["page_of"])
        words_tr: dict[str, str] = {}
        if translation:
            with i18n.use_locale(translation["locale"]):
                words_tr = labels()
        from bot.core.fields import field_label

        zh = language.startswith("zh")
        fields_sep = "、" if zh else ", "
        fields = fields_sep.join(field_label(f, language) for f in document["institution"]["fields"])

        def status_text(item: Mapping[str, Any]) -> str:
            if not item["rect_status"]:
                return ""
            text = words[item["rect_status"]]
            if item["target_date"]:
                date = format_date(dt.date.fromisoformat(item["target_date"]), language)
                text += ("，" if zh else ", ") + words["target_date"].format(date=date)
            return text

        def date_text(value: str) -> str:
            try:
                return format_date(dt.date.fromisoformat(value), language)
            except ValueError:
                return value

        totals = dict(document["totals"])
        totals["information"] = information_count(totals)
        template = _environment().get_template("pledge.html")
        return template.render(
            d=document,
            t=words,
            tr=words_tr,
            translation=translation,
            totals=totals,
            fields=fields,
            status_text=status_text,
            date_text=date_text,
            signed_at=format_datetime(document["signed_at"], language, tz),
            signed_at_tr=format_datetime(document["signed_at"], translation["locale"], tz) if translation else "",
            timezone=str(tz),
            code=format_code(document["verification_code"]),
            sha256=digest(document),
            qr=qr_svg(qr_payload(document)),
            num=lambda n: format_number(n, language),
            cn=cn_numeral if zh else str,
            nb=nobreak,
            footer_pages=footer_pages,
            lang="zh-CN" if zh else "en",
            colon="：" if zh else ": ",
            cjk_families=", ".join(f'"{f}"' for f in CJK_FAMILIES),
        )


def render_pdf(document: Mapping[str, Any], i18n: I18n, tz: zoneinfo.ZoneInfo) -> bytes:
    """The unsigned PDF; the canonical JSON rides along as an embedded file."""
    if not cjk_font_available():
        raise FontMissing(NO_CJK_FONT)
    import weasyprint

    html = render_html(document, i18n, tz)
    attachment = weasyprint.Attachment(
        string=canonical_json(document), name=ATTACHMENT_NAME, description="Zicha canonical submission (JSON)",
        url_fetcher=_url_fetcher(),
    )
    out = io.BytesIO()
    weasyprint.HTML(string=html, url_fetcher=_url_fetcher()).write_pdf(out, attachments=[attachment])
    return out.getvalue()


__all__ = ["NO_CJK_FONT", "FontMissing", "cjk_font_available", "render_pdf"]
