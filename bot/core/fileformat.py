"""What every data file format shares: pydantic models that refuse unknown keys, and the
translation of pydantic's errors into the one-line reasons content editors read.

The checklist, schedule, campaign, pledge, fields and regulations files are described by
pydantic models (``extra="forbid"``, strict types: TOML already gives real booleans, numbers
and dates, so ``max_length = true`` is a mistake, not 1). A validator that has something
precise to say raises :class:`Reason`; pydantic's own errors (a missing key, an unknown key,
a wrong type) are turned into the same kind of sentence by each format's translator, with a
"did you mean" hint for a misspelt key. Plain Python and pydantic only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails


class FileModel(BaseModel):
    """Base of every file-format model: unknown keys and loose types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Reason(ValueError):
    """Raised by a validator: the reason as users read it, and the item it concerns (if known)."""

    def __init__(self, reason: str, item_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.item_id = item_id


def suggest(key: str, allowed: Iterable[str], cutoff: float = 0.75) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else ``""``.

    The cutoff is high enough that only real typos get a hint, not any key sharing a few letters."""
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: str, allowed: Iterable[str], cutoff: float = 0.75) -> str:
    """``unknown key 'k'`` with a hint: a look-alike letter (Cyrillic а in allow_nа) is invisible
    in most editors, a typo gets its likely intended key."""
    hint = "" if key.isascii() else " (it contains a non-ASCII character)"
    return f"unknown key {key!r}{hint}{suggest(key, allowed, cutoff)}"


def allowed_keys(model: type[BaseModel]) -> frozenset[str]:
    """The keys a model accepts, as written in the file (aliases where given)."""
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def first_error(exc: ValidationError) -> ErrorDetails:
    """The error to report: the first one, unless an unknown key sits in a table that contains it.

    pydantic reports unknown keys after the fields; but a misspelt key (``knd``) also makes the
    intended one (``kind``) missing, and the misspelling is what the editor has to fix."""
    errors = exc.errors()
    first = errors[0]
    for error in errors:
        if error["type"] == "extra_forbidden" and _starts_with(first["loc"], error["loc"][:-1]):
            return error
    return first


def reason_of(error: ErrorDetails) -> Reason | None:
    """The :class:`Reason` a validator raised, if this error is one."""
    found = (error.get("ctx") or {}).get("error")
    return found if isinstance(found, Reason) else None


def _starts_with(loc: Sequence[Any], prefix: Sequence[Any]) -> bool:
    return tuple(loc[: len(prefix)]) == tuple(prefix)
