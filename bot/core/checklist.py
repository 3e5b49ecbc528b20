"""Checklists: frozen models, the TOML loader and its validation.

A checklist is data (``checklists/*.toml``, format in ``checklists/README.md``). It is
loaded once at start into frozen dataclasses, and every mistake a content editor can
make is reported as a :class:`ChecklistError` naming the file, the item and the reason,
so a broken file stops the bot at start instead of half-way through someone's
self-check. Plain Python and stdlib ``tomllib`` only: this module must not import
aiogram (the console chat and the CLI load checklists too).
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from bot.core import fields as _fields_registry
from bot.core import regulations as _regulations
from bot.core.conditions import Condition, ConditionError, parse_condition

ANSWER_KINDS: tuple[str, ...] = (
    "compliance",
    "confirm",
    "text",
    "yes_no",
    "number",
    "date",
    "select_one",
    "select_multiple",
    "attachment",
)
CHOICE_KINDS = ("select_one", "select_multiple")
# Files in the checklists directory that are not checklists.
NOT_CHECKLISTS = frozenset({"fields.toml"})

# Item ids travel in Telegram callback data (64 bytes in all, shared with other
# values), so they are short, ASCII and free of the ':' separator aiogram packs with.
ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,23}")
ID_RULE = "^[a-z0-9][a-z0-9-]{0,23}$"

LOCALES: tuple[str, ...] = ("zh_CN", "en")
DEFAULT_TEXT_MAX_LENGTH = 200
# A typed answer has to fit in one Telegram message (4096 characters) with room to spare.
MAX_TEXT_MAX_LENGTH = 4000

_CHECKLIST_KEYS = frozenset({"id", "version", "title", "campaign", "deadline", "source"})
_CHECKLIST_REQUIRED = ("id", "version", "title", "campaign", "source")
_SECTION_KEYS = frozenset({"id", "title", "items"})
_ITEM_KEYS = frozenset(
    {
        "id", "kind", "text", "guidance", "basis", "cites", "allow_na", "fields", "pattern", "pattern_hint",
        "max_length", "min", "max", "unit", "options", "relevant", "required", "same_as",
    }
)
_OPTION_KEYS = frozenset({"id", "label"})
_TOP_KEYS = frozenset({"checklist", "sections"})
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Localized:
    """A piece of checklist text in both languages the bot speaks."""

    zh_CN: str
    en: str

    def get(self, locale: str) -> str:
        """The text for ``locale``: any Chinese locale ("zh", "zh_CN", "zh-hans") gets zh_CN, all else en."""
        return self.zh_CN if (locale or "").lower().startswith("zh") else self.en


@dataclass(frozen=True)
class Option:
    """One listed answer of a single- or multiple-choice item."""

    id: str
    label: Localized


@dataclass(frozen=True)
class Item:
    """One question of a checklist.

    Defaults exist so tests and tools can build items by hand; the loader always
    passes every field.
    """

    id: str
    section_id: str
    kind: str
    text: Localized
    guidance: Localized | None = None
    basis: Localized | None = None
    allow_na: bool = False
    fields: frozenset[str] = frozenset()
    pattern: str | None = None
    # What a typed answer must look like, with an example, said when it does not match.
    pattern_hint: Localized | None = None
    max_length: int = 0
    cites: tuple[_regulations.Citation, ...] = ()
    minimum: float | None = None  # number items
    maximum: float | None = None
    unit: Localized | None = None
    options: tuple[Option, ...] = ()  # select_one / select_multiple
    relevant: Condition | None = None  # shown only while this holds on earlier answers
    required: bool = True
    same_as: str | None = None  # "checklist-id:item-id" of an earlier year's same question

    def option(self, option_id: str) -> Option:
        for option in self.options:
            if option.id == option_id:
                return option
        raise KeyError(option_id)

    def __post_init__(self) -> None:
        # Accept any iterable of field ids but keep the model hashable and immutable.
        if not isinstance(self.fields, frozenset):
            object.__setattr__(self, "fields", frozenset(self.fields))
        # A text item with no limit would let a pasted novel into the database.
        if self.kind == "text" and self.max_length <= 0:
            object.__setattr__(self, "max_length", DEFAULT_TEXT_MAX_LENGTH)

    def applies_to(self, institution_fields: Iterable[str]) -> bool:
        """True if the item concerns every institution or one of the institution's fields."""
        return not self.fields or not self.fields.isdisjoint(institution_fields)


@dataclass(frozen=True)
class Section:
    id: str
    title: Localized
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Checklist:
    id: str
    version: str
    title: Localized
    campaign: str
    deadline: datetime.date | None
    source: str
    sections: tuple[Section, ...]
    path: str
    # sha256 of the file as loaded; kept rather than re-read so the fingerprint
    # describes the questions in memory even if the file is edited afterwards.
    sha256: str = field(default="", repr=False)
    # The campaign this checklist runs in, when a deployment runs one (ZICHA_CAMPAIGN);
    # None: the campaign named after the checklist (the 2023 table: samr-2023-national).
    campaign_id: str | None = None
    # The campaign's pledge file (checklists/pledges/<id>.toml); None: the checklist's id.
    pledge_id: str | None = None
    # Whom the campaign covers (bot.core.campaigns.Coverage); None: every institution.
    coverage: Any = field(default=None, compare=False, repr=False)
    # The campaign's title, when a deployment runs several (digests and exports name it).
    campaign_title: Localized | None = field(default=None, compare=False, repr=False)

    def for_campaign(
        self,
        campaign_id: str,
        deadline: datetime.date | None,
        *,
        pledge_id: str | None = None,
        coverage: Any = None,
        title: Localized | None = None,
    ) -> Checklist:
        """This checklist as a campaign runs it: that campaign's id, deadline, pledge and coverage."""
        import dataclasses

        return dataclasses.replace(
            self, campaign_id=campaign_id, deadline=deadline, pledge_id=pledge_id, coverage=coverage, campaign_title=title
        )

    @property
    def campaign_key(self) -> str:
        """The campaign whose self-checks, reminders and digests these are (stored as
        ``selfchecks.campaign_id``): the campaign's id, else the checklist's."""
        return self.campaign_id or self.id

    @property
    def pledge_key(self) -> str:
        return self.pledge_id or self.id

    def covers(self, level: str, province: str, fields: Iterable[str]) -> bool:
        """Whether the campaign covers an institution (always, outside a campaign)."""
        return self.coverage is None or bool(self.coverage.covers(level, province, tuple(fields)))

    @cached_property
    def _items(self) -> tuple[Item, ...]:
        return tuple(item for section in self.sections for item in section.items)

    @cached_property
    def _by_id(self) -> dict[str, Item]:
        return {item.id: item for item in self._items}

    @cached_property
    def _sections_by_id(self) -> dict[str, Section]:
        return {section.id: section for section in self.sections}

    @property
    def items(self) -> tuple[Item, ...]:
        """Every item in file order."""
        return self._items

    def item(self, item_id: str) -> Item:
        """The item with this id; KeyError if there is none."""
        return self._by_id[item_id]

    def has_item(self, item_id: str) -> bool:
        return item_id in self._by_id

    def section(self, section_id: str) -> Section:
        """The section with this id; KeyError if there is none."""
        return self._sections_by_id[section_id]

    def applicable_items(self, institution_fields: Iterable[str]) -> list[Item]:
        """The items an institution working in ``institution_fields`` answers, in order."""
        fields = frozenset(institution_fields)
        return [item for item in self._items if item.applies_to(fields)]

    @property
    def fingerprint(self) -> str:
        """Eight hex digits identifying the file's content.

        Buttons carry it so that a press on a message rendered from an older version of
        the file can be recognised as stale.
        """
        if self.sha256:
            return self.sha256[:8]
        # Built by hand (tests, tools): hash what the questions say instead.
        content = repr((self.id, self.version, self.sections)).encode("utf-8")
        return hashlib.sha256(content).hexdigest()[:8]


class ChecklistError(ValueError):
    """A checklist file that cannot be used, with the file, the item (if any) and why."""

    def __init__(self, path: str, item_id: str | None, reason: str) -> None:
        self.path = path
        self.item_id = item_id
        self.reason = reason
        where = f"{path}: item {item_id!r}: " if item_id is not None else f"{path}: "
        super().__init__(where + reason)


def load_checklist(path: str | os.PathLike[str]) -> Checklist:
    """Load and validate one checklist file; raise ChecklistError if anything is wrong."""
    shown = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ChecklistError(shown, None, f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        # utf-8-sig: Windows editors like to prepend a BOM, which tomllib rejects.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ChecklistError(shown, None, f"the file is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line N, column M)".
        raise ChecklistError(shown, None, f"invalid TOML: {exc}") from exc
    return _Builder(shown).checklist(data, hashlib.sha256(raw).hexdigest())


def load_checklists(directory: str | os.PathLike[str]) -> dict[str, Checklist]:
    """Every ``*.toml`` checklist in ``directory`` (not recursive), keyed by checklist id."""
    root = Path(directory)
    if not root.is_dir():
        raise ChecklistError(os.fspath(directory), None, "not a directory")
    found: dict[str, Checklist] = {}
    for file in sorted(root.glob("*.toml")):
        # Dot files are editor swap and lock files, not content.
        if file.name.startswith(".") or not file.is_file() or file.name in NOT_CHECKLISTS:
            continue
        checklist = load_checklist(file)
        if checklist.id in found:
            raise ChecklistError(
                checklist.path, None, f"checklist id {checklist.id!r} is already used by {found[checklist.id].path}"
            )
        found[checklist.id] = checklist
    return found


class _Builder:
    """Turns parsed TOML into models, failing with a precise ChecklistError."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, reason: str, item_id: str | None = None) -> NoReturn:
        raise ChecklistError(self.path, item_id, reason)

    def checklist(self, data: Mapping[str, Any], sha256: str) -> Checklist:
        self.check_keys(data, _TOP_KEYS, "top level:", None)
        head = data.get("checklist")
        if head is None:
            self.fail("the [checklist] table is required")
        if not isinstance(head, dict):
            self.fail("checklist must be a table ([checklist])")
        self.check_keys(head, _CHECKLIST_KEYS, "[checklist]", None)
        for key in _CHECKLIST_REQUIRED:
            if key not in head:
                self.fail(f"[checklist] {key} is required")
        checklist_id = head["id"]
        if not isinstance(checklist_id, str) or not ID_RE.fullmatch(checklist_id):
            self.fail(f"[checklist] id must match {ID_RULE}, got {checklist_id!r}")
        version = self.string(head["version"], "[checklist] version", None)
        campaign = self.string(head["campaign"], "[checklist] campaign", None)
        source = self.string(head["source"], "[checklist] source", None)
        title = self.localized(head["title"], "[checklist] title", None)
        deadline = self.deadline(head.get("deadline"))

        raw_sections = data.get("sections")
        if raw_sections is None or raw_sections == []:
            self.fail("at least one section is required ([[sections]])")
        if not isinstance(raw_sections, list) or not all(isinstance(s, dict) for s in raw_sections):
            self.fail("sections must be an array of tables ([[sections]])")

        sections: list[Section] = []
        section_ids: set[str] = set()
        item_sections: dict[str, str] = {}  # item id -> section id, for uniqueness across the file
        for number, raw in enumerate(raw_sections, start=1):
            section = self.section(raw, number, item_sections)
            if section.id in section_ids:
                self.fail(f"duplicate section id {section.id!r}")
            section_ids.add(section.id)
            sections.append(section)
        self.check_relevant([item for section in sections for item in section.items])
        return Checklist(
            id=checklist_id,
            version=version,
            title=title,
            campaign=campaign,
            deadline=deadline,
            source=source,
            sections=tuple(sections),
            path=self.path,
            sha256=sha256,
        )

    def section(self, raw: Mapping[str, Any], number: int, item_sections: dict[str, str]) -> Section:
        section_id = raw.get("id")
        if section_id is None:
            self.fail(f"section #{number}: id is required")
        if not isinstance(section_id, str) or not ID_RE.fullmatch(section_id):
            self.fail(f"section #{number}: id must match {ID_RULE}, got {section_id!r}")
        where = f"section {section_id!r}:"
        self.check_keys(raw, _SECTION_KEYS, where, None)
        if "title" not in raw:
            self.fail(f"{where} title is required")
        title = self.localized(raw["title"], f"{where} title", None)
        raw_items = raw.get("items")
        if raw_items is None or raw_items == []:
            self.fail(f"{where} at least one item is required ([[sections.items]])")
        if not isinstance(raw_items, list) or not all(isinstance(i, dict) for i in raw_items):
            self.fail(f"{where} items must be an array of tables ([[sections.items]])")
        items: list[Item] = []
        for position, raw_item in enumerate(raw_items, start=1):
            item = self.item(raw_item, section_id, position)
            if item.id in item_sections:
                self.fail(f"duplicate item id (already used in section {item_sections[item.id]!r})", item.id)
            item_sections[item.id] = section_id
            items.append(item)
        return Section(id=section_id, title=title, items=tuple(items))

    def item(self, raw: Mapping[str, Any], section_id: str, position: int) -> Item:
        item_id = raw.get("id")
        if item_id is None:
            self.fail(f"section {section_id!r}, item #{position}: id is required")
        if not isinstance(item_id, str) or not ID_RE.fullmatch(item_id):
            # The bad id is still the best way to point at the item in the file.
            self.fail(f"id must match {ID_RULE}", str(item_id))
        self.check_keys(raw, _ITEM_KEYS, "", item_id)

        kind = raw.get("kind")
        if kind is None:
            self.fail("kind is required", item_id)
        if kind not in ANSWER_KINDS:
            self.fail(f"unknown kind {kind!r} (expected one of: {', '.join(ANSWER_KINDS)})", item_id)

        if "text" not in raw:
            self.fail("text is required", item_id)
        text = self.localized(raw["text"], "text", item_id)
        guidance = self.localized(raw["guidance"], "guidance", item_id) if "guidance" in raw else None
        basis = self.localized(raw["basis"], "basis", item_id) if "basis" in raw else None
        cites = self.cites(raw["cites"], item_id) if "cites" in raw else ()
        if basis is None and cites:
            # The text users read and the PDF prints is rendered from the registry.
            basis = Localized(
                zh_CN=_regulations.render_citations(cites, "zh_CN"), en=_regulations.render_citations(cites, "en")
            )
        if kind == "compliance" and basis is None:
            self.fail("basis is required for compliance items", item_id)

        allow_na = False
        if "allow_na" in raw:
            if kind != "compliance":
                self.fail("allow_na is only allowed on compliance items", item_id)
            allow_na = raw["allow_na"]
            if not isinstance(allow_na, bool):
                self.fail("allow_na must be true or false", item_id)

        pattern: str | None = None
        if "pattern" in raw:
            if kind != "text":
                self.fail("pattern is only allowed on text items", item_id)
            pattern = raw["pattern"]
            if not isinstance(pattern, str) or not pattern:
                self.fail("pattern must be a non-empty string", item_id)
            try:
                re.compile(pattern)
            except re.error as exc:
                self.fail(f"pattern does not compile: {exc}", item_id)
        pattern_hint: Localized | None = None
        if "pattern_hint" in raw:
            if pattern is None:
                self.fail("pattern_hint is only allowed together with pattern", item_id)
            pattern_hint = self.localized(raw["pattern_hint"], "pattern_hint", item_id)

        max_length = DEFAULT_TEXT_MAX_LENGTH if kind == "text" else 0
        if "max_length" in raw:
            if kind != "text":
                self.fail("max_length is only allowed on text items", item_id)
            max_length = raw["max_length"]
            # bool is an int in Python; `max_length = true` is a typo, not 1.
            if type(max_length) is not int or not 1 <= max_length <= MAX_TEXT_MAX_LENGTH:
                self.fail(f"max_length must be an integer from 1 to {MAX_TEXT_MAX_LENGTH}", item_id)

        fields: frozenset[str] = frozenset()
        if "fields" in raw:
            raw_fields = raw["fields"]
            if not isinstance(raw_fields, list) or not all(isinstance(f, str) for f in raw_fields):
                self.fail("fields must be a list of field ids", item_id)
            known_fields = _fields_registry.field_ids()
            for field_id in raw_fields:
                if field_id not in known_fields:
                    hint = self.suggest(field_id, known_fields) or f" (known: {', '.join(sorted(known_fields))})"
                    self.fail(f"unknown field {field_id!r}{hint}", item_id)
            fields = frozenset(raw_fields)

        minimum = self.number(raw, "min", kind, item_id)
        maximum = self.number(raw, "max", kind, item_id)
        if minimum is not None and maximum is not None and minimum > maximum:
            self.fail(f"min ({minimum:g}) is greater than max ({maximum:g})", item_id)
        unit = None
        if "unit" in raw:
            if kind != "number":
                self.fail("unit is only allowed on number items", item_id)
            unit = self.localized(raw["unit"], "unit", item_id)
        options: tuple[Option, ...] = ()
        if kind in CHOICE_KINDS:
            if "options" not in raw:
                self.fail(f"options are required for {kind} items", item_id)
            options = self.options(raw["options"], item_id)
        elif "options" in raw:
            self.fail("options are only allowed on select_one and select_multiple items", item_id)
        relevant = None
        if "relevant" in raw:
            if not isinstance(raw["relevant"], str) or not raw["relevant"].strip():
                self.fail("relevant must be a non-empty condition such as ${item} = 'yes'", item_id)
            try:
                relevant = parse_condition(raw["relevant"])
            except ConditionError as exc:
                self.fail(f"relevant: {exc}", item_id)
        required = raw.get("required", True)
        if not isinstance(required, bool):
            self.fail("required must be true or false", item_id)
        same_as = raw.get("same_as")
        if same_as is not None and (not isinstance(same_as, str) or not re.fullmatch(r"[a-z0-9-]+:[a-z0-9-]+", same_as)):
            self.fail("same_as must read checklist-id:item-id", item_id)

        return Item(
            id=item_id,
            section_id=section_id,
            kind=kind,
            text=text,
            guidance=guidance,
            basis=basis,
            allow_na=allow_na,
            fields=fields,
            pattern=pattern,
            pattern_hint=pattern_hint,
            max_length=max_length,
            cites=cites,
            minimum=minimum,
            maximum=maximum,
            unit=unit,
            options=options,
            relevant=relevant,
            required=required,
            same_as=same_as,
        )

    def cites(self, value: Any, item_id: str) -> tuple[_regulations.Citation, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
            self.fail("cites must be a list of citations such as \"order39:2021:14\"", item_id)
        out = []
        for text in value:
            try:
                out.append(_regulations.check_citation(text))
            except _regulations.RegulationError as exc:
                self.fail(str(exc), item_id)
        return tuple(out)

    def number(self, raw: Mapping[str, Any], key: str, kind: str, item_id: str) -> float | None:
        if key not in raw:
            return None
        if kind != "number":
            self.fail(f"{key} is only allowed on number items", item_id)
        value = raw[key]
        if type(value) not in (int, float):
            self.fail(f"{key} must be a number", item_id)
        return float(value)

    def options(self, value: Any, item_id: str) -> tuple[Option, ...]:
        if not isinstance(value, list) or len(value) < 2 or not all(isinstance(o, dict) for o in value):
            self.fail("options must be at least two tables ({ id = \"a\", label.zh_CN = ..., label.en = ... })", item_id)
        out: list[Option] = []
        for number, raw in enumerate(value, start=1):
            self.check_keys(raw, _OPTION_KEYS, f"option #{number}:", item_id)
            option_id = raw.get("id")
            if not isinstance(option_id, str) or not ID_RE.fullmatch(option_id):
                self.fail(f"option #{number}: id must match {ID_RULE}", item_id)
            if any(o.id == option_id for o in out):
                self.fail(f"option {option_id!r} is listed twice", item_id)
            if "label" not in raw:
                self.fail(f"option {option_id!r}: label is required", item_id)
            out.append(Option(option_id, self.localized(raw["label"], "label", item_id)))
        return tuple(out)

    def check_relevant(self, items: list[Item]) -> None:
        earlier: dict[str, Item] = {}
        for item in items:
            if item.relevant is not None:
                for ref in sorted(item.relevant.refs):
                    if ref not in earlier:
                        where = "a later item" if any(i.id == ref for i in items) else "no item"
                        self.fail(
                            f"relevant refers to ${{{ref}}}, which is {where}{self.suggest(ref, earlier)}; "
                            "a condition may only use answers to earlier items",
                            item.id,
                        )
                for ref, option in item.relevant.selected_options:
                    target = earlier[ref]
                    ids = [o.id for o in target.options]
                    if target.kind not in CHOICE_KINDS or option not in ids:
                        self.fail(f"relevant: item {ref!r} has no option {option!r}{self.suggest(option, ids)}", item.id)
            earlier[item.id] = item

    def localized(self, value: Any, name: str, item_id: str | None) -> Localized:
        if not isinstance(value, dict):
            self.fail(f"{name} must be a table with zh_CN and en (e.g. {name.split()[-1]}.zh_CN = \"...\")", item_id)
        for key in value:
            if key not in LOCALES:
                # Locale keys are short, so a looser match still points at the right one (zh -> zh_CN).
                self.fail(f"unknown key {name}.{key}{self.suggest(key, LOCALES, cutoff=0.5)}", item_id)
        texts: dict[str, str] = {}
        for locale in LOCALES:
            if locale not in value:
                self.fail(f"{name}.{locale} is required", item_id)
            texts[locale] = self.string(value[locale], f"{name}.{locale}", item_id)
        return Localized(zh_CN=texts["zh_CN"], en=texts["en"])

    def string(self, value: Any, name: str, item_id: str | None) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{name} must be a non-empty string", item_id)
        # Multi-line TOML strings carry stray newlines at either end.
        return value.strip()

    def deadline(self, value: Any) -> datetime.date | None:
        if value is None:
            return None
        # A bare TOML date (deadline = 2023-10-27) is as good as the quoted form;
        # a datetime is not: a deadline is a day.
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value
        if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
            try:
                return datetime.date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.fail(f"[checklist] deadline must be an ISO date (YYYY-MM-DD), got {value!r}")

    def check_keys(self, table: Mapping[str, Any], allowed: frozenset[str], where: str, item_id: str | None) -> None:
        # Unknown keys are rejected rather than ignored: a misspelt `allow_na` would
        # otherwise silently remove the 不适用 button.
        for key in table:
            if key not in allowed:
                prefix = f"{where} " if where else ""
                # A look-alike letter (Cyrillic а in allow_nа) is invisible in most editors.
                hint = "" if key.isascii() else " (it contains a non-ASCII character)"
                self.fail(f"{prefix}unknown key {key!r}{hint}{self.suggest(key, allowed)}", item_id)

    @staticmethod
    def suggest(key: str, allowed: Iterable[str], cutoff: float = 0.75) -> str:
        # High enough that only real typos get a hint, not any key sharing a few letters.
        close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=cutoff)
        return f" (did you mean {close[0]!r}?)" if close else ""
