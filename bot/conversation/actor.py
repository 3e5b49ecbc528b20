"""Who acts in the conversation (kept apart from the engine so that its flows in other
modules, such as ``onboarding``, name it without importing the engine)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.institutions import Institution
from storage.regulators import Regulator


@dataclass(frozen=True)
class Actor:
    """Who acts: their user id, their institution (None: not a member), their locale, and
    ``key``: where their conversation state is kept (the channel's conversation key)."""

    user_id: int
    institution: Institution | None
    locale: str
    key: str
    name: str = ""  # how the channel names them (kept with a signature)
    regulator: Regulator | None = None  # their regulator account, if they have one
    first_name: str = ""  # kept with their user record (joining, the language)
    username: str | None = None
