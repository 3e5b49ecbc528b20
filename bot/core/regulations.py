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
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, ValidationError, field_validator, model_validator

from bot.core.fileformat import FileModel, Reason, allowed_keys, first_error, reason_of, unknown_key

REGULATIONS_ENV = "ZICHA_REGULATIONS"
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_NUMBER = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,2})?")


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


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Id = Annotated[str, StringConstraints(pattern=_ID.pattern.join("^$"))]


class TextFile(FileModel):
    zh_CN: NonEmpty
    en: NonEmpty

    def to_text(self) -> Text:
        return Text(self.zh_CN, self.en)


class ArticleFile(FileModel):
    number: Annotated[str, StringConstraints(pattern=_NUMBER.pattern.join("^$"))]
    summary: TextFile
    uncertain: bool = False

    @field_validator("number")
    @classmethod
    def _no_leading_zero(cls, number: str) -> str:
        if number.startswith("0"):
            raise ValueError("leading zero")  # worded by _article_number
        return number


def _toml_date(value: Any) -> Any:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValueError("not a date")  # worded by _RULES
    return value


class EditionFile(FileModel):
    id: Id
    label: TextFile
    in_force: Annotated[dt.date, BeforeValidator(_toml_date)] | None = None
    uncertain: bool = False
    source: str = ""
    articles: list[ArticleFile] = Field(default_factory=list)

    @field_validator("articles")
    @classmethod
    def _each_article_once(cls, articles: list[ArticleFile]) -> list[ArticleFile]:
        seen: set[str] = set()
        for article in articles:
            if article.number in seen:
                raise Reason(f"article {article.number} listed twice")
            seen.add(article.number)
        return articles


class HeadFile(FileModel):
    id: Id
    title: TextFile
    short: TextFile | None = None
    numbering: Literal["article", "part"] = "article"


class RegulationFile(FileModel):
    """One regulation file as written: ``[regulation]`` and one or more ``[[editions]]``."""

    regulation: HeadFile
    editions: Annotated[list[EditionFile], Field(min_length=1)]

    @model_validator(mode="after")
    def _each_edition_once(self) -> RegulationFile:
        seen: set[str] = set()
        for edition in self.editions:
            if edition.id in seen:
                raise Reason(f"edition {edition.id!r}: duplicate edition id")
            seen.add(edition.id)
        return self


def _regulation_reason(shown: str, data: dict[str, Any], exc: ValidationError) -> str:
    error = first_error(exc)
    reason = reason_of(error)
    loc = tuple(error["loc"])
    kind = error["type"]
    where = shown
    if loc[:1] == ("editions",) and len(loc) >= 2:
        raw = data["editions"][loc[1]]
        where = f"{shown}: edition {raw.get('id') if isinstance(raw, dict) else None!r}"
    if reason is not None:
        return f"{where}: {reason.reason}" if loc else f"{shown}: {reason.reason}"
    if len(loc) == 1 and kind == "extra_forbidden":
        return f"{shown}: {unknown_key(str(loc[0]), allowed_keys(RegulationFile), cutoff=0.6)}"
    if loc[:1] == ("regulation",):
        rest = loc[1:]
        if not rest:
            return f"{shown}: the [regulation] table is required"
        if kind == "extra_forbidden" and len(rest) == 1:
            return f"{shown}: [regulation]: {unknown_key(str(rest[0]), allowed_keys(HeadFile), cutoff=0.6)}"
        if rest[0] == "id":
            return f"{shown}: [regulation] id must match ^[a-z0-9][a-z0-9-]{{0,31}}$"
        if rest[0] == "numbering":
            return f"{shown}: numbering must be 'article' or 'part'"
        return _text_reason(f"{shown}: [regulation] {rest[0]}", rest[1:], kind)
    if loc[:1] == ("editions",) and len(loc) <= 2:
        return f"{shown}: at least one [[editions]] is required"
    rest = loc[2:]
    if rest[:1] == ("articles",) and len(rest) >= 3:
        article = data["editions"][loc[1]]["articles"][rest[1]]
        sub = rest[2:]
        if kind == "extra_forbidden" and len(sub) == 1:
            return f"{where}: {unknown_key(str(sub[0]), allowed_keys(ArticleFile), cutoff=0.6)}"
        if sub[0] == "number":
            return f"{where}: article number must be like \"14\" or \"1.3\", got {article.get('number')!r}"
        if sub[0] == "summary":
            return _text_reason(f"{where}: article {article.get('number')} summary", sub[1:], kind)
        return f"{where}: article {article.get('number')}: {sub[0]} must be true or false"
    if kind == "extra_forbidden" and len(rest) == 1:
        return f"{where}: {unknown_key(str(rest[0]), allowed_keys(EditionFile), cutoff=0.6)}"
    key = str(rest[0])
    if key == "label":
        return _text_reason(f"{where} label", rest[1:], kind)
    return f"{where}: " + _RULES.get(key, f"{key}: {error['msg']}")


_RULES = {
    "id": "id must match ^[a-z0-9][a-z0-9-]{0,31}$",
    "in_force": "in_force must be a TOML date (2021-06-01)",
    "uncertain": "uncertain must be true or false",
    "source": "source must be a string",
    "articles": "articles must be an array of tables ([[editions.articles]])",
}


def _text_reason(name: str, rest: tuple[Any, ...], kind: str) -> str:
    if not rest or kind in ("extra_forbidden", "missing"):
        return f"{name} must have exactly zh_CN and en"
    return f"{name}: zh_CN and en must be non-empty strings"


def load_regulation(path: str | os.PathLike[str]) -> Regulation:
    shown = os.fspath(path)
    try:
        data = tomllib.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegulationError(f"{shown}: cannot read: {exc}") from exc
    try:
        file = RegulationFile.model_validate(data)
    except ValidationError as exc:
        raise RegulationError(_regulation_reason(shown, data, exc)) from None
    head = file.regulation
    editions = {
        e.id: Edition(
            id=e.id,
            label=e.label.to_text(),
            in_force=e.in_force,
            source=e.source,
            articles={a.number: Article(a.number, a.summary.to_text(), a.uncertain) for a in e.articles},
            uncertain=e.uncertain,
        )
        for e in file.editions
    }
    return Regulation(head.id, head.title.to_text(), head.short.to_text() if head.short else None, head.numbering, editions)


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
