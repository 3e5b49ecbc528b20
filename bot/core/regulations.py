"""The regulations registry: regulations, their editions and articles, as data.

Each ``checklists/regulations/*.toml`` file holds one regulation (format in the README
there). Checklist items cite ``regulation:edition:article`` (or ``regulation:edition``
for a text cited as a whole); :func:`check_citation` refuses an article that the edition
does not have, and :func:`render_citations` turns citations into the text shown in the
chat and printed in the PDF, in either language. The article summaries are Zicha's own
paraphrases, never the official wording; ``uncertain`` marks what rests on a secondary
source. Plain Python, no channel code.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGULATIONS_ENV = "ZICHA_REGULATIONS"
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_NUMBER = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,2})?")
_REG_KEYS = frozenset({"id", "title", "short", "numbering"})
_EDITION_KEYS = frozenset({"id", "label", "in_force", "uncertain", "source", "articles"})
_ARTICLE_KEYS = frozenset({"number", "summary", "uncertain"})


class RegulationError(ValueError):
    """A registry file or a citation that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Text:
    zh_CN: str
    en: str

    def get(self, locale: str) -> str:
        return self.zh_CN if (locale or "").lower().startswith("zh") else self.en


@dataclass(frozen=True)
class Article:
    number: str
    summary: Text
    uncertain: bool = False


@dataclass(frozen=True)
class Edition:
    id: str
    label: Text
    in_force: dt.date | None
    source: str
    articles: dict[str, Article]
    uncertain: bool = False


@dataclass(frozen=True)
class Regulation:
    id: str
    title: Text
    short: Text | None
    numbering: str  # "article" (第十四条 / Art. 14) or "part" (第一部分（三） / Part 1 (3))
    editions: dict[str, Edition]


@dataclass(frozen=True)
class Citation:
    regulation: str
    edition: str
    article: str | None = None

    def __str__(self) -> str:
        return ":".join(p for p in (self.regulation, self.edition, self.article) if p)


class Registry:
    def __init__(self, regulations: dict[str, Regulation]) -> None:
        self.regulations = regulations

    def parse(self, text: str) -> Citation:
        """A checked citation from ``regulation:edition[:article]``; RegulationError if it does not exist."""
        parts = text.strip().split(":") if isinstance(text, str) else []
        if len(parts) not in (2, 3) or not all(parts):
            raise RegulationError(f"citation {text!r} must read regulation:edition or regulation:edition:article")
        reg_id, edition_id = parts[0], parts[1]
        regulation = self.regulations.get(reg_id)
        if regulation is None:
            raise RegulationError(f"citation {text!r}: unknown regulation {reg_id!r}{_hint(reg_id, self.regulations)}")
        edition = regulation.editions.get(edition_id)
        if edition is None:
            raise RegulationError(
                f"citation {text!r}: {reg_id!r} has no edition {edition_id!r} "
                f"(editions: {', '.join(regulation.editions)})"
            )
        article = parts[2] if len(parts) == 3 else None
        if article is not None and article not in edition.articles:
            known = ", ".join(edition.articles) or "none listed"
            raise RegulationError(
                f"citation {text!r}: the {edition_id} edition of {reg_id!r} has no article {article!r} (articles: {known})"
            )
        return Citation(reg_id, edition_id, article)

    def render(self, citations: list[Citation] | tuple[Citation, ...], locale: str) -> str:
        """Citations as one line of text, consecutive articles of one edition grouped:
        《检验检测机构监督管理办法》（市场监管总局令第39号）第八条、第十三条."""
        zh = (locale or "").lower().startswith("zh")
        groups: list[tuple[tuple[str, str], list[str]]] = []
        for c in citations:
            key = (c.regulation, c.edition)
            if groups and groups[-1][0] == key:
                if c.article:
                    groups[-1][1].append(c.article)
            else:
                groups.append((key, [c.article] if c.article else []))
        rendered = []
        for (reg_id, edition_id), articles in groups:
            regulation = self.regulations[reg_id]
            edition = regulation.editions[edition_id]
            if zh:
                head = f"《{regulation.title.zh_CN}》（{edition.label.zh_CN}）"
                if regulation.numbering == "part" and regulation.short is not None:
                    head = regulation.short.zh_CN
                rendered.append(head + ("、".join(_zh_article(a, regulation.numbering) for a in articles)))
            else:
                head = f"{regulation.title.en} ({edition.label.en})"
                if regulation.numbering == "part" and regulation.short is not None:
                    head = regulation.short.en
                if articles:
                    word = "Part" if regulation.numbering == "part" else ("Art." if len(articles) == 1 else "Arts.")
                    head += f", {word} " + ", ".join(_en_article(a) for a in articles)
                rendered.append(head)
        return ("；" if zh else "; ").join(rendered)

    def edition(self, citation: Citation) -> Edition:
        return self.regulations[citation.regulation].editions[citation.edition]


_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1-999 in Chinese numerals as used in article numbers: 十四, 二十一, 一百零五."""
    if not 0 < n < 1000:
        raise ValueError(n)
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    out = ""
    if hundreds:
        out += _DIGITS[hundreds] + "百"
        if rest and tens == 0:
            out += "零"
    if tens:
        out += ("" if tens == 1 and not hundreds else _DIGITS[tens]) + "十"
    if ones:
        out += _DIGITS[ones]
    return out


def _zh_article(number: str, numbering: str) -> str:
    main, _, sub = number.partition(".")
    if numbering == "part":
        return f" 第{chinese_number(int(main))}部分" + (f"（{chinese_number(int(sub))}）" if sub else "")
    return f"第{chinese_number(int(main))}条" + (f"第{chinese_number(int(sub))}款" if sub else "")


def _en_article(number: str) -> str:
    main, _, sub = number.partition(".")
    return main + (f"({sub})" if sub else "")


def _hint(key: str, known: Any) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _text(value: Any, where: str) -> Text:
    if not isinstance(value, dict) or set(value) != {"zh_CN", "en"}:
        raise RegulationError(f"{where} must have exactly zh_CN and en")
    if not all(isinstance(v, str) and v.strip() for v in value.values()):
        raise RegulationError(f"{where}: zh_CN and en must be non-empty strings")
    return Text(value["zh_CN"].strip(), value["en"].strip())


def _keys(table: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise RegulationError(f"{where}: unknown key {key!r}{_hint(key, allowed)}")


def load_regulation(path: str | os.PathLike[str]) -> Regulation:
    shown = os.fspath(path)
    try:
        data = tomllib.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegulationError(f"{shown}: cannot read: {exc}") from exc
    _keys(data, frozenset({"regulation", "editions"}), shown)
    head = data.get("regulation")
    if not isinstance(head, dict):
        raise RegulationError(f"{shown}: the [regulation] table is required")
    _keys(head, _REG_KEYS, f"{shown}: [regulation]")
    reg_id = head.get("id")
    if not isinstance(reg_id, str) or not _ID.fullmatch(reg_id):
        raise RegulationError(f"{shown}: [regulation] id must match ^[a-z0-9][a-z0-9-]{{0,31}}$")
    numbering = head.get("numbering", "article")
    if numbering not in ("article", "part"):
        raise RegulationError(f"{shown}: numbering must be 'article' or 'part'")
    title = _text(head.get("title"), f"{shown}: [regulation] title")
    short = _text(head["short"], f"{shown}: [regulation] short") if "short" in head else None
    editions: dict[str, Edition] = {}
    raw_editions = data.get("editions")
    if not isinstance(raw_editions, list) or not raw_editions:
        raise RegulationError(f"{shown}: at least one [[editions]] is required")
    for raw in raw_editions:
        where = f"{shown}: edition {raw.get('id')!r}"
        _keys(raw, _EDITION_KEYS, where)
        ed_id = raw.get("id")
        if not isinstance(ed_id, str) or not _ID.fullmatch(ed_id):
            raise RegulationError(f"{where}: id must match ^[a-z0-9][a-z0-9-]{{0,31}}$")
        if ed_id in editions:
            raise RegulationError(f"{where}: duplicate edition id")
        in_force = raw.get("in_force")
        if in_force is not None and not (isinstance(in_force, dt.date) and not isinstance(in_force, dt.datetime)):
            raise RegulationError(f"{where}: in_force must be a TOML date (2021-06-01)")
        articles: dict[str, Article] = {}
        for art in raw.get("articles", []):
            _keys(art, _ARTICLE_KEYS, where)
            number = art.get("number")
            if not isinstance(number, str) or not _NUMBER.fullmatch(number) or number.startswith("0"):
                raise RegulationError(f"{where}: article number must be like \"14\" or \"1.3\", got {number!r}")
            if number in articles:
                raise RegulationError(f"{where}: article {number} listed twice")
            articles[number] = Article(
                number, _text(art.get("summary"), f"{where}: article {number} summary"), bool(art.get("uncertain", False))
            )
        editions[ed_id] = Edition(
            id=ed_id,
            label=_text(raw.get("label"), f"{where} label"),
            in_force=in_force,
            source=str(raw.get("source", "")),
            articles=articles,
            uncertain=bool(raw.get("uncertain", False)),
        )
    return Regulation(reg_id, title, short, numbering, editions)


def load_registry(directory: str | os.PathLike[str]) -> Registry:
    regulations: dict[str, Regulation] = {}
    for file in sorted(Path(directory).glob("*.toml")):
        if file.name.startswith("."):
            continue
        regulation = load_regulation(file)
        if regulation.id in regulations:
            raise RegulationError(f"{file}: regulation id {regulation.id!r} is used twice")
        regulations[regulation.id] = regulation
    return Registry(regulations)


_current: Registry | None = None


def registry() -> Registry:
    """The registry in use: ``ZICHA_REGULATIONS`` or the shipped ``checklists/regulations``."""
    global _current
    if _current is None:
        configured = os.environ.get(REGULATIONS_ENV)
        if configured:
            directory = Path(configured)
        else:
            from bot.resources import data_dir

            directory = data_dir("checklists") / "regulations"
        _current = load_registry(directory)
    return _current


def use_registry(new: Registry | None) -> None:
    global _current
    _current = new


def check_citation(text: str) -> Citation:
    return registry().parse(text)


def render_citations(citations: list[Citation] | tuple[Citation, ...], locale: str) -> str:
    return registry().render(citations, locale)
