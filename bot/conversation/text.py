"""Translations for the conversation engine without knowing who provides them.

The engine's strings go through ``_`` here (English source strings, extracted by pybabel
like every other ``_``). Which catalog answers is set per call by the engine
(``use_gettext``, from the actor's locale); outside the engine, the catalog installed at
start (``install``) answers in whatever locale its own context says (for Telegram: the
locale the language middleware chose for the update).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Gettext = Callable[[str], str]

_current: ContextVar[Gettext | None] = ContextVar("zicha_gettext", default=None)
_installed: list[Gettext] = []


def _(message: str) -> str:
    gettext = _current.get()
    if gettext is not None:
        return gettext(message)
    return _installed[-1](message) if _installed else message


def install(gettext: Gettext) -> None:
    """The catalog used when no engine call has set one (the deployment's, at start)."""
    _installed[:] = [gettext]


@contextmanager
def use_gettext(gettext: Gettext) -> Iterator[None]:
    token = _current.set(gettext)
    try:
        yield
    finally:
        _current.reset(token)
