"""Settings from environment variables (and an optional ``.env`` file), checked at start."""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SUPPORTED_LOCALES = ("zh_CN", "en")
DEFAULT_CHECKLIST = "samr-2023-national"
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


class ConfigError(ValueError):
    """A setting is wrong; the message names the variable and what to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    zicha_db: Path = Path("zicha.db")
    # full: an answer acknowledged to the user is on disk (synchronous=FULL); normal: faster
    # commits, but an OS crash or power loss can lose the last answers (storage/db.py).
    zicha_durability: str = "full"
    zicha_timezone: str = "Asia/Shanghai"
    zicha_locale: str = "zh_CN"
    zicha_checklist: str = DEFAULT_CHECKLIST
    # Run this campaign (checklists/campaigns/<id>.toml): its checklist, deadline and reminders
    # replace ZICHA_CHECKLIST's. `zicha chat --demo` sets "demo" (issue 9).
    zicha_campaign: str | None = None
    # Reminders and the outbox (issue 4). Telegram allows about 30 messages/s in bulk and
    # about 1/s per chat; a test or a local Bot API server may allow more.
    zicha_reminders: bool = True  # the scheduler in `zicha run` sends deadline reminders
    zicha_schedule: Path | None = None  # a campaign schedule file instead of checklists/campaigns/<id>.toml
    zicha_sweep_minutes: float = Field(default=10.0, gt=0, le=1440)  # how often `zicha run` looks for due reminders
    zicha_outbox_rate: float = Field(default=30.0, gt=0, le=10000)  # messages per second, all chats together
    zicha_outbox_chat_interval: float = Field(default=1.0, ge=0, le=60)  # seconds between two messages to one chat
    # Requests in flight at once. With 1, a crash can duplicate at most one message; raise it
    # only if the Bot API is so far away that one request at a time cannot reach the rate.
    zicha_outbox_concurrency: int = Field(default=1, ge=1, le=64)
    zicha_outbox_max_attempts: int = Field(default=5, ge=1, le=100)  # for 5xx and network errors
    zicha_outbox_backoff: float = Field(default=2.0, ge=0, le=3600)  # first retry after this many seconds, doubling
    # Per-user flood limit (issue 12): updates a second one user may send, and the burst allowed.
    zicha_user_rate: float = Field(default=2.0, gt=0, le=10000)
    zicha_user_burst: int = Field(default=20, ge=1, le=100000)
    # --- operations (issue 6): webhook mode, logs, heartbeat ---
    zicha_webhook_url: str | None = None
    zicha_webhook_secret: SecretStr | None = None
    zicha_webhook_host: str = "127.0.0.1"
    zicha_webhook_port: int = 8080
    zicha_webhook_path: str | None = None
    zicha_log_format: str = "json"
    zicha_log_level: str = "INFO"
    zicha_heartbeat_seconds: int = 30
    # --- regulators (issue 5): the daily completion digest, at this local time (HH:MM) ---
    zicha_digest_time: str = "08:30"
    # --- uploads and disk (issue 12): evidence files of an item, paper-pledge files of a
    # submission, everything of one institution (evidence + paper pledges); sizes in MB ---
    zicha_upload_item_files: int = Field(default=10, ge=1, le=10_000)
    zicha_upload_item_mb: float = Field(default=50.0, gt=0)
    zicha_upload_submission_files: int = Field(default=5, ge=1, le=10_000)
    zicha_upload_submission_mb: float = Field(default=40.0, gt=0)
    zicha_upload_institution_files: int = Field(default=200, ge=1, le=1_000_000)
    zicha_upload_institution_mb: float = Field(default=400.0, gt=0)
    zicha_disk_warn_mb: float = Field(default=1024.0, ge=0)  # `zicha status` warns below this much free space
    zicha_disk_fail_mb: float = Field(default=100.0, ge=0)  # ... and fails below this much
    zicha_db_warn_mb: float = Field(default=2048.0, gt=0)  # ... and warns when the database grows past this
    # --- web chat (issue 11): `zicha web`, or beside the bot in `zicha run` when ZICHA_PUBLIC_URL is set ---
    zicha_public_url: str | None = None  # https://zicha.example.org: links in e-mails and `zicha invites`
    zicha_web_host: str = "127.0.0.1"
    zicha_web_port: int = Field(default=8090, gt=0, lt=65536)
    zicha_web_secure_cookies: bool = True  # off only for local http:// testing
    zicha_web_session_idle_minutes: float = Field(default=120.0, gt=0)
    zicha_web_session_max_hours: float = Field(default=24.0 * 14, gt=0)
    zicha_web_max_body_mb: float = Field(default=20.0, gt=0, le=200)  # largest request (a PDF on /verify)
    zicha_web_guess_limit: int = Field(default=20, ge=1)  # wrong codes/links per address (and per code) ...
    zicha_web_guess_window_minutes: float = Field(default=15.0, gt=0)  # ... within this sliding window
    zicha_web_pdf_check_limit: int = Field(default=30, ge=1)  # PDFs checked on /verify per address in that window
    zicha_web_link_days: float = Field(default=90.0, gt=0)  # a personal sign-in link works this long after it was made
    zicha_web_idle_timeout_seconds: float = Field(default=60.0, gt=0)  # a connection without a complete request is closed
    zicha_web_body_timeout_seconds: float = Field(default=120.0, gt=0)  # a request body must arrive within this
    # --- e-mail (issue 11): reminders and broadcasts for web-only staff, through the outbox ---
    zicha_smtp_host: str | None = None
    zicha_smtp_port: int = Field(default=587, gt=0, lt=65536)
    zicha_smtp_user: str | None = None
    zicha_smtp_password: SecretStr | None = None
    zicha_smtp_from: str | None = None
    zicha_smtp_starttls: bool = True
    zicha_email_rate: float = Field(default=1.0, gt=0, le=1000)  # e-mails per second, all recipients together

    @field_validator("zicha_public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError(f"must be the public http(s):// address of the web chat, got {value!r}")
        return value.rstrip("/")

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not _TOKEN.match(value.get_secret_value()):
            # Never echo the token itself: it is a secret even when malformed.
            raise ValueError("does not look like a bot token from @BotFather (digits, a colon, then letters)")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("zicha_durability")
    @classmethod
    def _durability(cls, value: str) -> str:
        if value.strip().lower() not in ("full", "normal"):
            raise ValueError(f"must be full or normal, got {value!r}")
        return value.strip().lower()

    @field_validator("zicha_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value

    @field_validator("zicha_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        normalized = value.replace("-", "_")
        if normalized not in SUPPORTED_LOCALES:
            raise ValueError(f"unsupported locale {value!r} (use one of {', '.join(SUPPORTED_LOCALES)})")
        return normalized

    @field_validator("zicha_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError(f"must be the public https:// URL Telegram posts updates to, got {value!r}")
        return value

    @field_validator("zicha_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not re.match(r"^[A-Za-z0-9_-]{1,256}$", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for secret_token)")
        return value

    @field_validator("zicha_webhook_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError(f"must be a TCP port between 1 and 65535, got {value}")
        return value

    @field_validator("zicha_webhook_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^/[A-Za-z0-9_./-]*$", value):
            raise ValueError(f"must be a URL path starting with '/', got {value!r}")
        return value

    @field_validator("zicha_log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value.lower() not in ("json", "text"):
            raise ValueError(f"must be json or text, got {value!r}")
        return value.lower()

    @field_validator("zicha_log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
        return value.upper()

    @field_validator("zicha_digest_time")
    @classmethod
    def _digest_time(cls, value: str) -> str:
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError(f"must be a local time HH:MM such as 08:30, got {value!r}")
        return f"{int(match[1]):02d}:{match[2]}"

    @property
    def digest_time(self) -> tuple[int, int]:
        """(hour, minute) of the daily regulator digest, in ZICHA_TIMEZONE."""
        hour, minute = self.zicha_digest_time.split(":")
        return int(hour), int(minute)

    @field_validator("zicha_heartbeat_seconds")
    @classmethod
    def _heartbeat(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1 second, got {value}")
        return value

    @property
    def webhook_path(self) -> str:
        """Where the webhook server listens: ZICHA_WEBHOOK_PATH, else the path of ZICHA_WEBHOOK_URL."""
        if self.zicha_webhook_path:
            return self.zicha_webhook_path
        path = urlsplit(self.zicha_webhook_url or "").path
        return path if path not in ("", "/") else "/telegram"

    def require_webhook_url(self) -> str:
        if self.zicha_webhook_url is None:
            raise ConfigError(
                "ZICHA_WEBHOOK_URL is not set: give the public https:// URL that your reverse proxy "
                "forwards to Zicha, e.g. https://zicha.example.org/telegram"
            )
        return self.zicha_webhook_url

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.zicha_timezone)

    def require_token(self) -> str:
        if self.bot_token is None:
            raise ConfigError("BOT_TOKEN is not set: get a token from @BotFather and put it in the environment or .env")
        return self.bot_token.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Read settings; turn pydantic's report into one line per wrong variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}")
        raise ConfigError("; ".join(lines)) from None
