"""The deployment's signing identity, PAdES signatures (pyHanko) and their verification.

Key and certificate come from ZICHA_SIGNING_KEY and ZICHA_SIGNING_CERT (PEM or DER; a
regulator's own certificate works as well), else from the keys folder, where ``zicha
keys init`` (or the bot's first start) puts a self-signed pair. The keys folder is
(``default_keys_dir``):

1. ZICHA_KEYS_DIR, if set;
2. ``zicha-keys/`` next to the database, if it already holds a key or certificate
   (where every earlier version put them: existing deployments keep theirs);
3. ``zicha-keys/`` next to the database when the database is outside a git checkout
   (a deployment: /var/lib/zicha, the container's /data volume), so the key lives and
   is backed up with the data it signs;
4. otherwise — the database sits in a clone of the repository, as after the README's
   first command — a per-user folder, ``$XDG_DATA_HOME/zicha/keys`` (by default
   ``~/.local/share/zicha/keys``), so that a private key is never among a checkout's
   files for ``git add`` to pick up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import io
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.files import private_dir, private_file

KEY_DIR = "zicha-keys"
KEY_FILE = "signing-key.pem"
CERT_FILE = "signing-cert.pem"
T = TypeVar("T")


class SigningError(RuntimeError):
    """The signing key or certificate cannot be used; the message says what to fix."""


class SigningSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    zicha_db: Path = Path("zicha.db")
    zicha_signing_key: Path | None = None
    zicha_signing_cert: Path | None = None
    zicha_signing_key_password: SecretStr | None = None
    zicha_keys_dir: Path | None = None  # where the default self-signed pair lives (see default_keys_dir)


@dataclass(frozen=True)
class Identity:
    key: Path
    cert: Path
    password: bytes | None
    configured: bool  # True: from ZICHA_SIGNING_*; False: the default pair next to the DB


def identity(settings: SigningSettings | None = None, db_path: Path | None = None) -> Identity:
    settings = settings or SigningSettings()
    password = settings.zicha_signing_key_password.get_secret_value().encode() if settings.zicha_signing_key_password else None
    if settings.zicha_signing_key or settings.zicha_signing_cert:
        if not (settings.zicha_signing_key and settings.zicha_signing_cert):
            raise SigningError("ZICHA_SIGNING_KEY and ZICHA_SIGNING_CERT must be set together")
        return Identity(settings.zicha_signing_key, settings.zicha_signing_cert, password, True)
    folder = default_keys_dir(Path(db_path or settings.zicha_db), settings.zicha_keys_dir)
    return Identity(folder / KEY_FILE, folder / CERT_FILE, password, False)


def _in_checkout(folder: Path) -> bool:
    """True if ``folder`` is inside a git working tree (a ``.git`` folder, or the
    ``.git`` file of a worktree, in it or above it)."""
    return any((parent / ".git").exists() for parent in (folder, *folder.parents))


def user_keys_dir() -> Path:
    """``$XDG_DATA_HOME/zicha/keys``, by default ``~/.local/share/zicha/keys``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "zicha" / "keys"


def default_keys_dir(db_path: Path, configured: Path | None = None) -> Path:
    """The folder of the default key pair (the order is in the module's docstring)."""
    if configured is not None and str(configured):
        return configured.expanduser().resolve()
    beside = db_path.expanduser().resolve().parent / KEY_DIR
    if (beside / KEY_FILE).exists() or (beside / CERT_FILE).exists():
        return beside
    if not _in_checkout(beside.parent):
        return beside
    return user_keys_dir()


def init_keys(ident: Identity, common_name: str = "Zicha pledge signing (self-signed)", *, force: bool = False) -> bool:
    """Create a self-signed key pair at ``ident``'s paths. False if both already exist."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if ident.key.exists() and ident.cert.exists() and not force:
        return False
    if ident.key.exists() != ident.cert.exists() and not force:
        present = ident.key if ident.key.exists() else ident.cert
        raise SigningError(f"{present} exists but its partner does not; remove it or use --force")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Zicha")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    for folder in {ident.key.parent, ident.cert.parent}:
        if not folder.is_dir():
            private_dir(folder)  # zicha-keys/: 0700 whatever the umask (an existing folder is the operator's)
    encryption = (
        serialization.BestAvailableEncryption(ident.password) if ident.password else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    for path, content in ((ident.key, pem), (ident.cert, cert.public_bytes(serialization.Encoding.PEM))):
        private_file(path)  # 0600 whatever the umask, also when replacing (--force) an older file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
    return True


def ensure_default_keys(ident: Identity) -> bool:
    """Create the default self-signed pair when no identity is configured and none exists
    yet (at the bot's start, or the console chat's); True if it was created now."""
    return not ident.configured and init_keys(ident)


def load_signer(ident: Identity):  # type: ignore[no-untyped-def]
    from pyhanko.sign import signers

    for path, what in ((ident.key, "signing key"), (ident.cert, "certificate")):
        if not path.is_file():
            hint = "set ZICHA_SIGNING_KEY/ZICHA_SIGNING_CERT correctly" if ident.configured else "run: zicha keys init"
            raise SigningError(f"The {what} {path} does not exist ({hint})")
    signer = signers.SimpleSigner.load(str(ident.key), str(ident.cert), key_passphrase=ident.password)
    if signer is None:
        raise SigningError(f"Cannot load the signing key {ident.key} with the certificate {ident.cert} (wrong format or password?)")
    return signer


def sign_pdf(pdf: bytes, signer, *, reason: str, location: str = "") -> bytes:  # type: ignore[no-untyped-def]
    """A PAdES (baseline B) signature over the whole file."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    meta = signers.PdfSignatureMetadata(
        field_name="ZichaPledge", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256",
        reason=reason, location=location or None,
    )
    out = signers.sign_pdf(writer, meta, signer=signer)
    return out.getvalue()


# --- verification --------------------------------------------------------------------


@dataclass
class SignatureCheck:
    ok: bool
    reason: str
    signer_subject: str = ""
    signed_at: dt.datetime | None = None
    attachment: bytes | None = None


# pyHanko logs every validation failure as a warning with the exception's traceback
# (``pyhanko.sign.validation.generic_cms``: "Validation error [cert context: …]"), then
# returns it in the status it hands back, which check_signature turns into one sentence.
# While Zicha validates, those warnings are held back; errors still get through.
_VALIDATION_LOGGERS = ("pyhanko", "pyhanko_certvalidator")
_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved_levels: dict[str, int] = {}


@contextlib.contextmanager
def _quiet_validation_logs() -> Iterator[None]:
    global _quiet_depth
    with _quiet_lock:
        if _quiet_depth == 0:
            for name in _VALIDATION_LOGGERS:
                logger = logging.getLogger(name)
                _saved_levels[name] = logger.level
                logger.setLevel(max(logger.getEffectiveLevel(), logging.ERROR))
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for name, level in _saved_levels.items():
                    logging.getLogger(name).setLevel(level)


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a pyHanko coroutine from synchronous code, also when called inside a running
    event loop (then in a worker thread with its own loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _embedded_file(reader, name: str) -> bytes | None:  # type: ignore[no-untyped-def]
    try:
        names = reader.root["/Names"]["/EmbeddedFiles"]
    except KeyError:
        return None

    def walk(node):  # type: ignore[no-untyped-def]
        node = node.get_object()
        if "/Names" in node:
            pairs = node["/Names"]
            for i in range(0, len(pairs) - 1, 2):
                if str(pairs[i]) == name:
                    spec = pairs[i + 1].get_object()
                    return spec["/EF"]["/F"].get_object().data
        for kid in node.get("/Kids", []):
            found = walk(kid)
            if found is not None:
                return found
        return None

    return walk(names)


def check_signature(data: bytes, trusted_cert: Path, attachment_name: str) -> SignatureCheck:
    """Is ``data`` a PDF whose only signature is intact, valid, made with the trusted
    certificate and covers the whole file? Returns the embedded submission JSON too."""
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except (PdfReadError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        return SignatureCheck(False, f"the file is not a readable PDF or is damaged ({type(exc).__name__}: {exc})")
    if not signatures:
        return SignatureCheck(False, "the PDF carries no digital signature")
    if len(signatures) > 1:
        return SignatureCheck(False, f"the PDF carries {len(signatures)} signatures; a Zicha pledge has exactly one")
    try:
        cert = load_cert_from_pemder(str(trusted_cert))
    except (OSError, ValueError) as exc:
        return SignatureCheck(False, f"cannot read the trusted certificate {trusted_cert}: {exc}")
    context = ValidationContext(trust_roots=[cert], allow_fetching=False)
    try:
        with _quiet_validation_logs():
            status = _run(lambda: async_validate_pdf_signature(signatures[0], context, skip_diff=True))
    except Exception as exc:  # noqa: BLE001 - pyHanko raises many kinds on malformed signatures
        return SignatureCheck(
            False, f"the signature cannot be checked: its data is damaged or of an unknown kind ({type(exc).__name__}: {exc})"
        )
    subject = status.signing_cert.subject.human_friendly if status.signing_cert else "?"
    signed_at = status.signer_reported_dt
    if not status.intact:
        return SignatureCheck(False, "the content was changed after signing: its digest no longer matches the signature", subject, signed_at)
    if not status.valid:
        return SignatureCheck(False, "the signature value is not valid for this content", subject, signed_at)
    if not status.trusted:
        return SignatureCheck(
            False, f"the signature was made with a certificate this deployment does not trust ({subject})", subject, signed_at
        )
    if status.coverage is not SignatureCoverageLevel.ENTIRE_FILE:
        return SignatureCheck(False, "something was appended to the PDF after it was signed", subject, signed_at)
    attachment = _embedded_file(reader, attachment_name)
    if attachment is None:
        return SignatureCheck(False, "the PDF is signed but carries no Zicha submission data", subject, signed_at)
    return SignatureCheck(True, "signature intact, valid and made with this deployment's certificate", subject, signed_at, attachment)
