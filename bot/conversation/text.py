"""Translations for the conversation engine without knowing who provides them.

The engine's strings go through ``_`` here (English source strings, extracted by pybabel
like every other ``_``). Which catalog answers is set per call by the engine
(``use_gettext``, from the actor's locale); outside the engine, the catalog installed at
start (``install``) answers in whatever locale its own context says (for Telegram: the
locale the language middleware chose for the update).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token

Gettext = Callable[[str], str]

_current: ContextVar[tuple[Gettext, object] | None] = ContextVar("zicha_gettext", default=None)
_installed: list[Gettext] = []


def _(message: str) -> str:
    current = _current.get()
    if current is not None:
        return current[0](message)
    return _installed[-1](message) if _installed else message


def N_(message: str) -> str:
    """``message`` as it is, marked for pybabel (``scripts/i18n.sh`` extracts ``N_`` too):
    for messages defined in a table and translated where they are shown, with ``_``."""
    return message


def speaking() -> object:
    """What says which translations ``_`` gives now (the ``key`` given to ``use_gettext``,
    else the function itself): equal keys, equal translations. A cache of rendered text
    keys on it."""
    current = _current.get()
    if current is not None:
        return current[1]
    return _installed[-1] if _installed else None


def install(gettext: Gettext) -> None:
    """The catalog used when no engine call has set one (the deployment's, at start)."""
    _installed[:] = [gettext]


class use_gettext:  # named as the function it was: ``with use_gettext(...):``
    """``_`` answers with ``gettext`` inside; ``key``: a value that stands for its
    translations (the catalog and the locale), for ``speaking``. (A class rather than a
    generator context manager: entered on every update the engine handles.)"""

    __slots__ = ("entry", "token")

    def __init__(self, gettext: Gettext, key: object = None) -> None:
        self.entry = (gettext, gettext if key is None else key)
        self.token: Token[tuple[Gettext, object] | None] | None = None

    def __enter__(self) -> None:
        self.token = _current.set(self.entry)

    def __exit__(self, *exc: object) -> None:
        assert self.token is not None
        _current.reset(self.token)
        self.token = None
