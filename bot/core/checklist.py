"""Checklists: frozen models, the TOML loader and its validation.

A checklist is data (``checklists/*.toml``, format in ``checklists/README.md``). It is
loaded once at start into frozen dataclasses, and every mistake a content editor can
make is reported as a :class:`ChecklistError` naming the file, the item and the reason,
so a broken file stops the bot at start instead of half-way through someone's
self-check. The file format is a set of pydantic models (``ChecklistFile`` and the models
it nests, unknown keys refused); they are turned into the frozen dataclasses the rest of
the code uses. Plain Python, ``tomllib`` and pydantic only: this module must not import
aiogram (the console chat and the CLI load checklists too).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from bot.core import fields as _fields_registry
from bot.core import regulations as _regulations
from bot.core.conditions import Condition, ConditionError, parse_condition
from bot.core.fileformat import FileModel, Reason, allowed_keys, first_error, reason_of, suggest, unknown_key

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
# An item's question screen is one Telegram message (4,096 characters) and one keyboard (100
# buttons): the question, its guidance (on demand), its legal basis and the answer given are
# shown together, so each is bounded, the typed answer included.
MAX_TEXT_MAX_LENGTH = 1000
MAX_ITEM_TEXT = {"text": 1000, "guidance": 1200, "basis": 600, "pattern_hint": 200, "unit": 20}
MAX_OPTIONS = 30
MAX_OPTION_LABEL = 60
# A repeat inside a repeated group ((\d+)+, (a*)*, (x|y+){2,}) can take exponential time on
# a typed answer that almost matches, and the match runs where the bot answers everyone.
_NESTED_REPEAT = re.compile(r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d*,\d*\})\)(?:[+*]|\{\d*,\d*\})")

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
    # The campaign's inspection sample quotas ((field or "other", number), bot/core/sampling.py).
    sample_quotas: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)
    sample_basis: str = field(default="", compare=False, repr=False)  # where those numbers come from
    # the campaign's time zone: its deadline is a day there (None: the deployment's, ZICHA_TIMEZONE)
    timezone: str | None = field(default=None, compare=False, repr=False)

    def for_campaign(
        self,
        campaign_id: str,
        deadline: datetime.date | None,
        *,
        pledge_id: str | None = None,
        coverage: Any = None,
        title: Localized | None = None,
        sample_quotas: tuple[tuple[str, int], ...] = (),
        sample_basis: str = "",
        timezone: str | None = None,
    ) -> Checklist:
        """This checklist as a campaign runs it: that campaign's id, deadline (a day in
        ``timezone``), pledge, coverage and inspection sample quotas."""
        import dataclasses

        return dataclasses.replace(
            self, campaign_id=campaign_id, deadline=deadline, pledge_id=pledge_id, coverage=coverage, campaign_title=title,
            sample_quotas=sample_quotas, sample_basis=sample_basis, timezone=timezone,
        )  # fmt: skip

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
    try:
        model = ChecklistFile.model_validate(data)
    except ValidationError as exc:
        raise _translate(shown, data, exc) from None
    return model.to_checklist(shown, hashlib.sha256(raw).hexdigest())


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


# ── the file format ──────────────────────────────────────────────────────────
# pydantic models of the TOML (extra="forbid", strict types), turned into the frozen models
# above by ``to_*``. Rules that need several keys (what a kind allows) are model validators;
# a validator raises Reason with the sentence users read, and _translate turns pydantic's own
# errors (missing, unknown key, wrong type) into the same file/item/reason form.

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ChecklistId = Annotated[str, StringConstraints(pattern=ID_RULE)]


class LocalizedFile(FileModel):
    zh_CN: NonEmpty
    en: NonEmpty

    def to_localized(self) -> Localized:
        return Localized(zh_CN=self.zh_CN, en=self.en)


def _localized(value: LocalizedFile | None) -> Localized | None:
    return value.to_localized() if value is not None else None


class OptionFile(FileModel):
    id: ChecklistId
    label: LocalizedFile


class ItemFile(FileModel):
    id: ChecklistId
    kind: str
    text: LocalizedFile
    guidance: LocalizedFile | None = None
    basis: LocalizedFile | None = None
    cites: Annotated[list[str], Field(min_length=1)] | None = None
    allow_na: bool | None = None
    fields: list[str] | None = None
    pattern: NonEmpty | None = None
    pattern_hint: LocalizedFile | None = None
    max_length: Annotated[int, Field(ge=1, le=MAX_TEXT_MAX_LENGTH)] | None = None
    # finite: a NaN bound would pass every check here and break every comparison later
    min: Annotated[float, Field(allow_inf_nan=False)] | None = None
    max: Annotated[float, Field(allow_inf_nan=False)] | None = None
    unit: LocalizedFile | None = None
    options: Annotated[list[OptionFile], Field(min_length=2)] | None = None
    relevant: NonEmpty | None = None
    required: bool = True
    same_as: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+:[a-z0-9-]+$")] | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in ANSWER_KINDS:
            raise Reason(f"unknown kind {kind!r} (expected one of: {', '.join(ANSWER_KINDS)})")
        return kind

    @field_validator("cites")
    @classmethod
    def _citations_exist(cls, cites: list[str]) -> list[str]:
        for text in cites:
            try:
                _regulations.check_citation(text)
            except _regulations.RegulationError as exc:
                raise Reason(str(exc)) from None
        return cites

    @field_validator("fields")
    @classmethod
    def _fields_exist(cls, field_ids: list[str]) -> list[str]:
        known = _fields_registry.field_ids()
        for field_id in field_ids:
            if field_id not in known:
                hint = suggest(field_id, known) or f" (known: {', '.join(sorted(known))})"
                raise Reason(f"unknown field {field_id!r}{hint}")
        return field_ids

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise Reason(f"pattern does not compile: {exc}") from None
        if _NESTED_REPEAT.search(pattern):
            raise Reason(
                "pattern repeats a group that repeats inside (such as (\\d+)+), which can take very long "
                "on an answer that almost matches; write it without the nested repeat"
            )
        return pattern

    @field_validator("options")
    @classmethod
    def _options_unique(cls, options: list[OptionFile]) -> list[OptionFile]:
        if len(options) > MAX_OPTIONS:
            raise Reason(f"{len(options)} options: at most {MAX_OPTIONS} fit one question's buttons")
        seen: set[str] = set()
        for option in options:
            if option.id in seen:
                raise Reason(f"option {option.id!r} is listed twice")
            for locale in ("zh_CN", "en"):
                if len(getattr(option.label, locale)) > MAX_OPTION_LABEL:
                    raise Reason(f"option {option.id!r}: its label.{locale} is longer than {MAX_OPTION_LABEL} characters (a button's)")
            seen.add(option.id)
        return options

    @field_validator("relevant")
    @classmethod
    def _condition_parses(cls, relevant: str) -> str:
        try:
            parse_condition(relevant)
        except ConditionError as exc:
            raise Reason(f"relevant: {exc}") from None
        return relevant

    @model_validator(mode="after")
    def _texts_fit_one_screen(self) -> ItemFile:
        for key, limit in MAX_ITEM_TEXT.items():
            value = getattr(self, key)
            for locale in ("zh_CN", "en"):
                if value is not None and len(getattr(value, locale)) > limit:
                    raise Reason(
                        f"{key}.{locale} is {len(getattr(value, locale)):,} characters; at most {limit:,} fit the "
                        "question's screen (one Telegram message)"
                    )
        return self

    @model_validator(mode="after")
    def _settings_fit_the_kind(self) -> ItemFile:
        kind = self.kind
        if kind == "compliance" and self.basis is None and not self.cites:
            raise Reason("basis is required for compliance items")
        if self.allow_na is not None and kind != "compliance":
            raise Reason("allow_na is only allowed on compliance items")
        if self.pattern is not None and kind != "text":
            raise Reason("pattern is only allowed on text items")
        if self.pattern_hint is not None and self.pattern is None:
            raise Reason("pattern_hint is only allowed together with pattern")
        if self.max_length is not None and kind != "text":
            raise Reason("max_length is only allowed on text items")
        for key in ("min", "max"):
            if getattr(self, key) is not None and kind != "number":
                raise Reason(f"{key} is only allowed on number items")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise Reason(f"min ({self.min:g}) is greater than max ({self.max:g})")
        if self.unit is not None and kind != "number":
            raise Reason("unit is only allowed on number items")
        if kind in CHOICE_KINDS and self.options is None:
            raise Reason(f"options are required for {kind} items")
        if kind not in CHOICE_KINDS and self.options is not None:
            raise Reason("options are only allowed on select_one and select_multiple items")
        return self

    def to_item(self, section_id: str) -> Item:
        cites = tuple(_regulations.check_citation(text) for text in self.cites or ())
        basis = _localized(self.basis)
        if basis is None and cites:
            # The text users read and the PDF prints is rendered from the registry.
            basis = Localized(
                zh_CN=_regulations.render_citations(cites, "zh_CN"), en=_regulations.render_citations(cites, "en")
            )
        return Item(
            id=self.id,
            section_id=section_id,
            kind=self.kind,
            text=self.text.to_localized(),
            guidance=_localized(self.guidance),
            basis=basis,
            allow_na=bool(self.allow_na),
            fields=frozenset(self.fields or ()),
            pattern=self.pattern,
            pattern_hint=_localized(self.pattern_hint),
            max_length=self.max_length or (DEFAULT_TEXT_MAX_LENGTH if self.kind == "text" else 0),
            cites=cites,
            minimum=self.min,
            maximum=self.max,
            unit=_localized(self.unit),
            options=tuple(Option(o.id, o.label.to_localized()) for o in self.options or ()),
            relevant=parse_condition(self.relevant) if self.relevant is not None else None,
            required=self.required,
            same_as=self.same_as,
        )


class SectionFile(FileModel):
    id: ChecklistId
    title: LocalizedFile
    items: Annotated[list[ItemFile], Field(min_length=1)]


def _deadline(value: Any) -> Any:
    # A bare TOML date (deadline = 2023-10-27) is as good as the quoted form;
    # a datetime is not: a deadline is a day.
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise Reason(f"[checklist] deadline must be an ISO date (YYYY-MM-DD), got {value!r}")


class HeadFile(FileModel):
    id: ChecklistId
    version: NonEmpty
    title: LocalizedFile
    campaign: NonEmpty
    deadline: Annotated[datetime.date, BeforeValidator(_deadline)] | None = None
    source: NonEmpty


class ChecklistFile(FileModel):
    """A checklist file as written: a [checklist] table and one or more [[sections]]."""

    checklist: HeadFile
    sections: Annotated[list[SectionFile], Field(min_length=1)]

    @model_validator(mode="after")
    def _ids_unique_and_conditions_look_back(self) -> ChecklistFile:
        section_ids: set[str] = set()
        item_sections: dict[str, str] = {}  # item id -> section id, for uniqueness across the file
        for section in self.sections:
            for item in section.items:
                if item.id in item_sections:
                    raise Reason(f"duplicate item id (already used in section {item_sections[item.id]!r})", item.id)
                item_sections[item.id] = section.id
            if section.id in section_ids:
                raise Reason(f"duplicate section id {section.id!r}")
            section_ids.add(section.id)
        items = [item for section in self.sections for item in section.items]
        earlier: dict[str, ItemFile] = {}
        for item in items:
            if item.relevant is not None:
                condition = parse_condition(item.relevant)
                for ref in sorted(condition.refs):
                    if ref not in earlier:
                        where = "a later item" if any(i.id == ref for i in items) else "no item"
                        raise Reason(
                            f"relevant refers to ${{{ref}}}, which is {where}{suggest(ref, earlier)}; "
                            "a condition may only use answers to earlier items",
                            item.id,
                        )
                for ref, option in condition.selected_options:
                    target = earlier[ref]
                    ids = [o.id for o in target.options or ()]
                    if target.kind not in CHOICE_KINDS or option not in ids:
                        raise Reason(f"relevant: item {ref!r} has no option {option!r}{suggest(option, ids)}", item.id)
            earlier[item.id] = item
        return self

    def to_checklist(self, path: str, sha256: str) -> Checklist:
        head = self.checklist
        return Checklist(
            id=head.id,
            version=head.version,
            title=head.title.to_localized(),
            campaign=head.campaign,
            deadline=head.deadline,
            source=head.source,
            sections=tuple(
                Section(id=s.id, title=s.title.to_localized(), items=tuple(i.to_item(s.id) for i in s.items))
                for s in self.sections
            ),
            path=path,
            sha256=sha256,
        )


# What a key must be, said when pydantic finds it is not (wrong type, out of range, malformed).
_HEAD_RULES = {
    "id": "[checklist] id must match {rule}, got {input!r}",
    "version": "[checklist] version must be a non-empty string",
    "campaign": "[checklist] campaign must be a non-empty string",
    "source": "[checklist] source must be a non-empty string",
    "deadline": "[checklist] deadline must be an ISO date (YYYY-MM-DD), got {input!r}",
}
_ITEM_RULES = {
    "id": "id must match {rule}",
    "kind": "unknown kind {input!r} (expected one of: " + ", ".join(ANSWER_KINDS) + ")",
    "allow_na": "allow_na must be true or false",
    "required": "required must be true or false",
    "pattern": "pattern must be a non-empty string",
    "max_length": f"max_length must be an integer from 1 to {MAX_TEXT_MAX_LENGTH}",
    "min": "min must be a number",
    "max": "max must be a number",
    "fields": "fields must be a list of field ids",
    "cites": 'cites must be a list of citations such as "order39:2021:14"',
    "options": 'options must be at least two tables ({{ id = "a", label.zh_CN = ..., label.en = ... }})',
    "relevant": "relevant must be a non-empty condition such as ${{item}} = 'yes'",
    "same_as": "same_as must read checklist-id:item-id",
}
_LOCALIZED = ("title", "text", "guidance", "basis", "pattern_hint", "unit", "label")


def _translate(path: str, data: Mapping[str, Any], exc: ValidationError) -> ChecklistError:
    """The ChecklistError for the first thing pydantic found wrong, worded as users read it."""
    error = first_error(exc)
    loc = tuple(error["loc"])
    raw_item = _raw_item(data, loc)
    item_id = str(raw_item["id"]) if raw_item is not None and "id" in raw_item else None
    reason = reason_of(error)
    if reason is not None:
        return ChecklistError(path, reason.item_id or item_id, reason.reason)
    return ChecklistError(path, item_id, _reason(data, loc, error, item_id))


def _raw_item(data: Mapping[str, Any], loc: tuple[Any, ...]) -> Mapping[str, Any] | None:
    if len(loc) >= 4 and loc[0] == "sections" and loc[2] == "items":
        try:
            found = data["sections"][loc[1]]["items"][loc[3]]
        except (KeyError, IndexError, TypeError):
            return None
        return found if isinstance(found, Mapping) else None
    return None


def _reason(data: Mapping[str, Any], loc: tuple[Any, ...], error: ErrorDetails, item_id: str | None) -> str:
    kind = error["type"]
    if loc[:1] == ("checklist",):
        if len(loc) == 1:
            return "the [checklist] table is required" if kind == "missing" else "checklist must be a table ([checklist])"
        return _in_table(loc[1:], error, "[checklist]", "[checklist] ", _HEAD_RULES, HeadFile)
    if loc[:1] == ("sections",) and len(loc) <= 2:
        if kind in ("missing", "too_short"):
            return "at least one section is required ([[sections]])"
        return "sections must be an array of tables ([[sections]])"
    if loc[:1] == ("sections",):
        number = loc[1] + 1
        raw = data["sections"][loc[1]]
        section_id = raw.get("id")
        named = isinstance(section_id, str) and ID_RE.fullmatch(section_id) is not None
        where = f"section {section_id!r}:" if named else f"section #{number}:"
        rest = loc[2:]
        if rest[:1] == ("items",) and len(rest) <= 2:
            if kind in ("missing", "too_short"):
                return f"{where} at least one item is required ([[sections.items]])"
            return f"{where} items must be an array of tables ([[sections.items]])"
        if rest[:1] == ("items",):
            return _item_reason(rest[2:], error, section_id, rest[1] + 1, item_id, _raw_item(data, loc) or {})
        rules = {"id": f"{where} id must match {{rule}}, got {{input!r}}"}
        return _in_table(rest, error, where, f"{where} ", rules, SectionFile)
    return _in_table(loc, error, "top level:", "", {}, ChecklistFile)


def _item_reason(
    rest: tuple[Any, ...], error: ErrorDetails, section_id: str, position: int, item_id: str | None, raw: Mapping[str, Any]
) -> str:
    if rest == ("id",) and item_id is None:
        return f"section {section_id!r}, item #{position}: id is required"
    if rest[:1] == ("options",) and len(rest) >= 3:
        number = rest[1] + 1
        rules = {"id": f"option #{number}: id must match {{rule}}"}
        if rest[2:] == ("label",) and error["type"] == "missing":
            return f"option {raw['options'][rest[1]].get('id')!r}: label is required"
        return _in_table(rest[2:], error, f"option #{number}:", "", rules, OptionFile)
    return _in_table(rest, error, "", "", _ITEM_RULES, ItemFile)


def _in_table(
    rest: tuple[Any, ...], error: ErrorDetails, where: str, name_prefix: str, rules: Mapping[str, str], model: type[FileModel]
) -> str:
    """The reason for an error at ``rest`` inside one table (``where`` names it in the message)."""
    kind = error["type"]
    prefix = f"{where} " if where else ""
    key = str(rest[0]) if rest else ""
    if kind == "extra_forbidden" and len(rest) == 1:
        return prefix + unknown_key(key, allowed_keys(model))
    if key in _LOCALIZED and (len(rest) > 1 or kind != "missing"):
        return _localized_reason(rest, error, name_prefix + key)
    if kind == "missing" and len(rest) == 1:
        return f"{prefix}{key} is required"
    rule = rules.get(key)
    if rule is None:
        return f"{prefix}{key}: {error['msg']}"
    return rule.format(rule=ID_RULE, input=error.get("input"))


def _localized_reason(rest: tuple[Any, ...], error: ErrorDetails, name: str) -> str:
    kind = error["type"]
    if len(rest) == 1:
        return f"{name} must be a table with zh_CN and en (e.g. {name.split()[-1]}.zh_CN = \"...\")"
    locale = str(rest[1])
    if kind == "extra_forbidden":
        # Locale keys are short, so a looser match still points at the right one (zh -> zh_CN).
        return f"unknown key {name}.{locale}{suggest(locale, LOCALES, cutoff=0.5)}"
    if kind == "missing":
        return f"{name}.{locale} is required"
    return f"{name}.{locale} must be a non-empty string"
