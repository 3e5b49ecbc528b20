"""``zicha chat``: the conversation engine (``bot.conversation``) talking to a terminal.

A thin adapter, as ``bot/telegram/conversation.py`` is for Telegram, with no Telegram and
no network: every line typed is decoded into an engine action — a key shown next to a
button of the latest screen presses it, a command (``/progress``, ``/start CODE`` …) is its
action, anything else is typed text — and the ``Outcome`` is printed: tags stripped, a
press's notice in parentheses, the screen a press changed printed again as "(updated)",
and the files the engine hands over (the signed pledge PDF) saved into a folder.

Buttons get keys that do not move: the answers of a screen are numbered 1, 2, 3 …, and
navigation always has the same letter (``p`` previous, ``n`` skip / continue, ``c``
contents, ``r`` review …), whether or not the item offers 不适用. On a screen that waits for
typed text the numbers are ``#1``, ``#2`` …, so that a typed number is the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from bot.config import SUPPORTED_LOCALES
from bot.conversation.actions import (
    Action,
    FindInstitution,
    NavAction,
    Navigate,
    ShowCampaigns,
    ShowOverdue,
    ShowPledge,
    ShowProgress,
    ShowReview,
    ShowStatus,
    StartBroadcast,
    TypeText,
)
from bot.conversation.engine import Actor, Conversation
from bot.conversation.onboarding import AskLanguage, OtherCommand, ShowHelp, Start, Verify
from bot.conversation.screens import Attachment, Button, Expect, Outcome
from bot.conversation.text import _
from storage.institutions import get_membership, get_user_language
from storage.regulators import get_regulator

CONSOLE_USER_ID = 1000
CONSOLE_BOT_ID = 100
# Where the console's conversation state is kept: the key aiogram's FSM gave it when the
# console ran the Telegram dispatcher (bot 100, a private chat with user 1000), so a
# conversation begun then goes on.
CONSOLE_KEY = f"{CONSOLE_BOT_ID}:{{user}}:{{user}}:::default"
CONSOLE_NAME = "Console"
DEFAULT_FILES_DIR = Path("zicha-files")
_TAG = re.compile(r"<[^>]+>")

# Fixed keys for navigation buttons; every other button is numbered 1, 2, 3 … in order.
NAV_KEYS = {
    NavAction.PREV: "p",
    NavAction.SKIP: "n",
    NavAction.CONTINUE: "n",
    NavAction.GUIDE: "g",
    NavAction.TOC: "c",
    NavAction.REVIEW: "r",
    NavAction.SUMMARY: "s",
    NavAction.KEEP: "k",
}
PAGE_KEYS = {"◀": "<", "▶": ">"}  # the review list's page buttons
BACK_KEY = "b"  # "↩ Back to the question" on a follow-up

# Typed commands and the engine action each one is (the argument: what follows the command).
COMMANDS: dict[str, Callable[[str | None], Action]] = {
    "start": lambda arg: Start(code=arg),
    "help": lambda arg: ShowHelp(),
    "language": lambda arg: AskLanguage(),
    "progress": lambda arg: ShowProgress(),
    "review": lambda arg: ShowReview(),
    "pledge": lambda arg: ShowPledge(),
    "verify": lambda arg: Verify(code=arg),
    "status": lambda arg: ShowStatus(),
    "overdue": lambda arg: ShowOverdue(),
    "campaign": lambda arg: ShowCampaigns(),
    "institution": lambda arg: FindInstitution(query=arg or ""),
    "broadcast": lambda arg: StartBroadcast(campaign=arg or ""),
}
QUIT = {"q", "quit", "exit"}


def button_key(button: Button) -> str | None:
    """The fixed key of a navigation button, or None for a button that is numbered."""
    action = button.action
    if not isinstance(action, Navigate):
        return None
    if action.action is NavAction.REVIEW and button.label in PAGE_KEYS:
        return PAGE_KEYS[button.label]
    if action.action is NavAction.OPEN:
        return BACK_KEY if button.label.startswith("↩") else None
    return NAV_KEYS.get(action.action)


TYPED_SCREEN_MARK = "#"
"""Before the numbered keys of a screen that waits for typed text (a number, a name, a
problem): there "3" is the answer 3, and "#3" presses button 3."""


def assign_keys(buttons: list[Button], *, typed: bool = False) -> list[str]:
    """One key per button, in order: fixed letters for navigation, numbers for the rest
    (``typed``: the screen waits for typed text, so its numbers are marked, ``#1``…)."""
    keys: list[str] = []
    number = 0
    for button in buttons:
        key = button_key(button)
        if key is None or key in keys:
            number += 1
            key = (TYPED_SCREEN_MARK if typed else "") + str(number)
        keys.append(key)
    return keys


def decode_command(line: str) -> Action | None:
    """The action of a typed command (``/start CODE``, ``/progress`` …), None if ``line`` is none."""
    if not line.startswith("/"):
        return None
    name, _space, rest = line[1:].partition(" ")
    make = COMMANDS.get(name)
    return OtherCommand() if make is None else make(rest.strip() or None)


def shown_path(path: Path) -> str:
    """A path as the user typed it would be: ./zicha-files/x.pdf for a relative one."""
    text = path.as_posix()
    return text if path.is_absolute() or text.startswith(".") else "./" + text


def plain(text: str) -> str:
    """The engine's markup as terminal text."""
    return html.unescape(_TAG.sub("", text))


class ConsoleChat:
    """One person at the terminal, talking to the engine."""

    def __init__(
        self,
        conversation: Conversation,
        write: Callable[[str], None],
        user_id: int = CONSOLE_USER_ID,
        files_dir: Path = DEFAULT_FILES_DIR,
    ) -> None:
        self.conversation = conversation
        self.write = write
        self.user_id = user_id
        self.files_dir = files_dir
        self.next_id = 1  # screens are numbered as messages are: the live token of the engine
        self.keys: dict[str, Action] = {}  # key typed -> the action of that button on the latest screen
        self.screen_id = 0  # the screen the keys belong to
        self.saved: list[Path] = []  # every file saved, in order

    # --- who is typing -------------------------------------------------------------------

    def locale(self) -> str:
        """The language the console user chose with /language, else the deployment's."""
        chosen = get_user_language(self.conversation.db, self.user_id)
        return chosen if chosen in SUPPORTED_LOCALES else self.conversation.settings.zicha_locale

    @contextlib.contextmanager
    def speaking(self) -> Iterator[None]:
        """Translate the console's own lines (``_()``) into the user's language."""
        with self.conversation.speaking(self.locale()):
            yield

    def actor(self) -> Actor:
        """Read for every line, as the Telegram bot does for every update: a member removed
        or a regulator added meanwhile is who they are now."""
        db = self.conversation.db
        return Actor(
            self.user_id, get_membership(db, self.user_id), self.locale(), CONSOLE_KEY.format(user=self.user_id),
            CONSOLE_NAME, get_regulator(db, self.user_id), CONSOLE_NAME,
        )  # fmt: skip

    # --- decoding ------------------------------------------------------------------------

    def press(self, line: str) -> Action | None:
        """The action of the button whose key is ``line``, if any, taken on its screen."""
        key = line.strip()
        action = self.keys.get(key) or self.keys.get(key.lower())
        return action.at(self.screen_id) if action is not None else None

    def decode(self, line: str) -> tuple[Action, int | None]:
        """The action ``line`` is, and the screen it was pressed on (None: typed)."""
        pressed = self.press(line)
        if pressed is not None:
            return pressed, pressed.origin
        return decode_command(line) or TypeText(text=line), None

    # --- rendering -----------------------------------------------------------------------

    def message(
        self, text: str, *, buttons: list[Button] | None = None, edits: int | None = None, expects: Expect = Expect.NOTHING
    ) -> int:
        """Print a message (its buttons with their keys, which become the current ones);
        ``edits``: the id of the message it replaces (a press changes its own screen);
        ``expects``: what the screen waits for besides its buttons (typed text: its
        numbered keys are marked, so a typed number is an answer, not a press)."""
        self.write("")
        with self.speaking():
            prefix = _("(updated)") + " " if edits is not None else ""
        self.write(prefix + plain(text))
        buttons = buttons or []
        keys = assign_keys(buttons, typed=expects in (Expect.TEXT, Expect.TEXT_OR_FILE))
        self.keys = {key: button.action for key, button in zip(keys, buttons, strict=True)}
        if buttons:
            self.write("  ".join(f"[{key}] {plain(b.label)}" for key, b in zip(keys, buttons, strict=True)))
        if edits is None:
            edits, self.next_id = self.next_id, self.next_id + 1
        self.screen_id = edits
        return edits

    async def render(self, outcome: Outcome, actor: Actor, *, pressed: int | None = None) -> None:
        """Show ``outcome`` as Telegram would: a press's notice after everything (as the
        answer to the press), typed input's notice as the first message; the screen in place
        of the pressed one (``pressed``: its id), or below; then the files; then what follows
        (``then``)."""
        messages = list(outcome.messages)
        if outcome.notice is not None and pressed is None:
            messages.insert(0, outcome.notice)
        for text in messages:
            self.message(text)
        if outcome.screen is not None:
            token = self.message(outcome.screen.text, buttons=outcome.screen.buttons(), edits=pressed, expects=outcome.screen.expects)
            self.conversation.shown(actor, outcome, token)
            for attachment in outcome.screen.attachments:
                self.save(attachment)
        if outcome.pdf is not None:
            made = await self.conversation.pledge_pdf(actor, outcome.pdf)
            if isinstance(made, str):
                self.message(made)
            else:
                self.save(made)
        if outcome.then is not None:
            await self.render(outcome.then, actor)
        if outcome.notice is not None and pressed is not None:
            self.write(f"  ({plain(outcome.notice)})")

    def save(self, attachment: Attachment) -> Path | None:
        """Write a file into ``files_dir``: a different file of the same name is kept (the
        new one gets -2, -3 …), the same content is not written twice."""
        name = Path(attachment.name).name or "file"
        try:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            path = self.files_dir / name
            n = 1
            while path.exists() and path.read_bytes() != attachment.content:
                n += 1
                path = self.files_dir / f"{Path(name).stem}-{n}{Path(name).suffix}"
            if not path.exists():
                path.write_bytes(attachment.content)
        except OSError as exc:
            with self.speaking():
                self.write(_("Could not save a file the bot sent into {folder}: {reason}").format(
                    folder=shown_path(self.files_dir), reason=exc.strerror or exc
                ))  # fmt: skip
            return None
        self.saved.append(path)
        self.write("")
        if attachment.caption:
            self.write(plain(attachment.caption))
        with self.speaking():
            self.write(_("File saved: {path}").format(path=shown_path(path)))
        return path

    # --- the loop ------------------------------------------------------------------------

    async def send(self, line: str) -> None:
        line = line.strip()
        actor = self.actor()
        action, pressed = self.decode(line)
        try:
            if line.split(" ", 1)[0] == "/export" and actor.regulator is not None:
                # The desk's export: "preparing", then each workbook (saved as a file).
                wanted = line.split(" ", 1)[1] if " " in line else ""
                async with contextlib.aclosing(self.conversation.desk.export(actor, wanted)) as steps:
                    async for step in steps:
                        await self.render(step, actor, pressed=None)
                return
            outcome = self.conversation.handle(actor, action)
            await self.render(outcome, actor, pressed=pressed)
        except Exception:
            logging.getLogger(__name__).exception("console: %s failed", type(action).__name__)
            with self.speaking():
                told = _("Sorry, something went wrong on our side. Your saved answers are safe; please try again or send /start.")
            if pressed is not None:
                self.write(f"  ({told})")
            else:
                self.message(told)

    def prepare(self) -> None:
        """What ``zicha run`` does at start that the console needs: the signing key."""
        from bot.pledge.signing import SigningError, SigningSettings, ensure_default_keys, identity

        settings = self.conversation.settings
        try:
            ident = identity(SigningSettings(zicha_db=settings.zicha_db), db_path=settings.zicha_db)
            created = ensure_default_keys(ident)
        except SigningError:
            return  # signing says what is wrong when it is tried
        if created:
            with self.speaking():
                self.write(_("Created a self-signed key for signing pledges: {key} (certificate {cert}).").format(
                    key=ident.key, cert=ident.cert
                ))  # fmt: skip

    async def run(self, read: Callable[[], str]) -> None:
        """Read lines until end of input or "q"."""
        with quiet_logs():
            self.prepare()
            with self.speaking():
                self.write(_(
                    "Zicha console chat. Type the number or letter in [ ] to press a button, text to reply, "
                    "/help for help, q to quit. Files the bot sends are saved in {folder}."
                ).format(folder=shown_path(self.files_dir)))  # fmt: skip
            await self.send("/start")
            try:
                while True:
                    try:
                        line = await read_line(read)
                    except EOFError:
                        break
                    except UnicodeDecodeError:  # a GBK terminal, a file in another encoding
                        with self.speaking():
                            self.write(_("That line could not be read: the terminal must send UTF-8 text. Nothing was saved."))
                        continue
                    if line.strip().lower() in QUIT:
                        break
                    await self.send(line)
            finally:  # also on Ctrl-C: what was answered is saved already
                with self.speaking():
                    self.write(_("Bye. Your answers are saved; run the same command to continue."))


async def read_line(read: Callable[[], str]) -> str:
    """``read()`` on a daemon thread: a line is awaited without holding the event loop, and
    Ctrl-C ends the chat at once (a pool thread blocked in ``input()`` would make the
    interpreter wait for Enter before it exits)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def give(outcome: Callable[[], None]) -> None:
        if not done.done():
            outcome()

    def reader() -> None:
        try:
            line = read()
        except Exception as exc:  # noqa: BLE001 - EOFError, UnicodeDecodeError, ...: raised where it is awaited
            error = exc
            loop.call_soon_threadsafe(give, lambda: done.set_exception(error))
        else:
            loop.call_soon_threadsafe(give, lambda: done.set_result(line))

    threading.Thread(target=reader, name="zicha-console-input", daemon=True).start()
    return await done


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """The console is a conversation, not a server: log records (English, for operators,
    some with tracebacks) are not printed between the messages. What the user must know
    reaches them as messages, in their language."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)  # with a handler in place, logging's last resort stays silent
    try:
        yield
    finally:
        root.removeHandler(handler)
