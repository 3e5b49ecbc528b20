"""The canonical form of a signed submission: what exactly was signed.

A submission is one JSON document (sorted keys, no insignificant whitespace, UTF-8) made
from the institution, every applicable item with its answer, the pledge text as shown,
the signer and the moment of signing. The pledge is an official Chinese document: its
text, the checklist's and the items' are Chinese whatever the signer's interface
language; a signer using English also gets the English translation of the pledge
(``translation``), for reference only. Its SHA-256 is printed in the PDF and stored; the
PDF carries the JSON as an embedded file, so ``zicha verify`` can compare a PDF with the
database without trusting anything but the signature and the stored digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from typing import Any

from bot.core.checklist import Checklist, Item
from bot.core.interview import Answer, Choice, Interview, Progress, answer_fields
from bot.pledge.text import AUTHORITATIVE, Pledge, PledgeText

# 2: Chinese text whatever the locale, a translation for others, the information-item count,
# the preamble true to the rectifications.
FORMAT = "zicha-pledge/2"

ROLES = ("legal_representative", "top_manager")
# A person's name as typed: long enough for any Chinese or foreign name with a title.
SIGNER_NAME_MAX = 100

# Verification codes: 10 Crockford base32 characters (50 random bits), shown as XXXXX-XXXXX.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
_CODE_RE = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
_CONFUSABLES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_verification_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def normalize_code(text: str | None) -> str | None:
    """The stored form of a typed verification code (dashes, spaces, case and Crockford's
    confusable letters forgiven), or None if it cannot be one."""
    if not text or len(text) > 40:
        return None
    compact = "".join(unicodedata.normalize("NFKC", text).replace("-", " ").split()).upper().translate(_CONFUSABLES)
    return compact if _CODE_RE.fullmatch(compact) else None


# Kinds whose answer is a value the PDF prints as it reads in the document's language.
VALUE_KINDS = frozenset({"yes_no", "number", "date", "select_one", "select_multiple", "attachment"})


def shown_value(item: Item, answer: Answer | None, locale: str) -> str | None:
    """The answer of a number, choice or attachment item as it reads ("12 人",
    "检验检测机构资质认定证书（CMA）、CNAS 实验室认可证书", a file's name), kept in the
    signed document so the PDF prints it from the document alone."""
    if answer is None or answer.text is None:
        return None
    if answer.value is Choice.NUMBER and item.unit is not None:
        return f"{answer.text} {item.unit.get(locale)}"
    if answer.value is Choice.SELECTED:
        chosen = set(answer.text.split())
        return ("、" if locale.startswith("zh") else ", ").join(o.label.get(locale) for o in item.options if o.id in chosen)
    return answer.text


def _answer_json(item: Item, number: int, answer: Answer | None, locale: str, section_title: str) -> dict[str, Any]:
    out = {
        "n": number,
        "id": item.id,
        "section": section_title,
        "kind": item.kind,
        "question": item.text.get(locale),
        **answer_fields(answer),
    }
    if item.kind in VALUE_KINDS:  # the three original kinds keep the document as it was
        out["shown"] = shown_value(item, answer, locale)
    return out


# Answers that give information rather than a finding (every kind but compliance).
INFORMATION_CHOICES = (
    Choice.YES, Choice.NO, Choice.TEXT, Choice.AFFIRMATIVE, Choice.NEGATIVE, Choice.NUMBER, Choice.DATE,
    Choice.SELECTED, Choice.FILE,
)  # fmt: skip


def totals(progress: Progress) -> dict[str, int]:
    """The counts shown in the bot and the PDF; they add up: items = information +
    compliant + non-compliant + not applicable (once every item is answered)."""
    counts = progress.counts
    return {
        "items": progress.total,
        "information": sum(counts.get(c, 0) for c in INFORMATION_CHOICES),
        "compliant": counts.get(Choice.COMPLIANT, 0),
        "noncompliant": counts.get(Choice.NONCOMPLIANT, 0),
        "not_applicable": counts.get(Choice.NA, 0),
        "open_rectifications": progress.open_rectifications,
    }


def information_count(totals: Mapping[str, int]) -> int:
    """The information items of a totals block (older documents did not record them)."""
    if "information" in totals:
        return totals["information"]
    return totals["items"] - totals["compliant"] - totals["noncompliant"] - totals["not_applicable"]


def rectification_state(interview: Interview, answers: Mapping[str, Answer]) -> tuple[int, int, dt.date | None]:
    """(problems found, rectifications still open, the latest target date of the open ones)."""
    found = opened = 0
    latest: dt.date | None = None
    for item in interview.visible_items(answers):
        answer = answers.get(item.id)
        if answer is None or answer.value is not Choice.NONCOMPLIANT:
            continue
        found += 1
        if answer.open_rectification:
            opened += 1
            if answer.target_date is not None and (latest is None or answer.target_date > latest):
                latest = answer.target_date
    return found, opened, latest


def pledge_json(text: PledgeText, state: tuple[int, int, dt.date | None], locale: str) -> dict[str, Any]:
    found, opened, latest = state
    return {
        "title": text.title,
        "intro": text.preamble(found, opened, latest, locale),
        "commitments": list(text.commitments),
        "closing": text.closing,
    }


def content(
    *,
    checklist: Checklist,
    interview: Interview,
    institution: Any,
    answers: Mapping[str, Answer],
    progress: Progress,
    pledge: Pledge,
    locale: str,
    signer_name: str,
    signer_role: str,
) -> dict[str, Any]:
    """Everything the signer confirms (no id, code or time yet): also what the preview
    shows, so a change between preview and confirmation is detected by its digest.
    ``locale`` is the signer's interface language; the document is Chinese."""
    zh = AUTHORITATIVE
    items = [
        _answer_json(item, n, answers.get(item.id), zh, checklist.section(item.section_id).title.get(zh))
        # Items hidden by an earlier answer are not part of what is signed (their answers stay in the history).
        for n, item in enumerate(interview.visible_items(answers), 1)
    ]
    state = rectification_state(interview, answers)
    body: dict[str, Any] = {
        "format": FORMAT,
        "locale": locale,
        "language": zh,
        "institution": {
            "name": institution.name,
            "uscc": institution.uscc,
            "cma_cert": institution.cma_cert,
            "province": institution.province,
            "level": institution.level,
            "fields": list(institution.fields),
        },
        "checklist": {
            "id": checklist.id,
            "version": checklist.version,
            "fingerprint": checklist.fingerprint,
            "title": checklist.title.get(zh),
        },
        "items": items,
        "totals": totals(progress),
        "pledge": {"id": pledge.id, "version": pledge.version, **pledge_json(pledge.text(zh), state, zh)},
        "signer": {"name": signer_name, "role": signer_role},
    }
    if locale != zh and locale in pledge.texts:
        body["translation"] = {"locale": locale, "pledge": pledge_json(pledge.text(locale), state, locale)}
    return body


def canonical_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def digest(document: Mapping[str, Any] | str) -> str:
    text = document if isinstance(document, str) else canonical_json(document)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sealed(
    body: Mapping[str, Any], *, submission_id: int, code: str, signed_at: str, signed_by: int, signed_by_name: str
) -> dict[str, Any]:
    """The content plus what identifies this signing: the stored, hashed document."""
    return dict(body) | {
        "submission": submission_id,
        "verification_code": code,
        "signed_at": signed_at,
        "signed_by": {"telegram_id": signed_by, "name": signed_by_name},
    }


def items_differ(signed: Mapping[str, Any], current: Mapping[str, Any]) -> list[int]:
    """Numbers of the items whose answers differ between two contents (same checklist)."""
    keys = ("value", "text", "problem", "measure", "rect_status", "target_date")
    before = {i["id"]: i for i in signed["items"]}
    after = {i["id"]: i for i in current["items"]}
    changed = []
    for item_id in sorted(set(before) | set(after), key=lambda i: (before.get(i) or after[i])["n"]):
        a, b = before.get(item_id), after.get(item_id)
        if a is None or b is None or any(a[k] != b[k] for k in keys):
            changed.append((a or b)["n"])  # type: ignore[index]
    return changed
