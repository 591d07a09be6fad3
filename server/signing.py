"""The collector's signing key: Ed25519, what evidence packs and daily seals are signed with.

The private key is a PKCS#8 PEM file created on first start in the collector's state folder
(beside its SQLite database, or `server.signing_key_file`), mode 0600 whatever the umask (like
the database, server/filemodes.py); its public key is written beside it (`.pub.pem`) to hand to
whoever must check a pack. The fingerprint is the SHA-256 of the raw 32-byte public key, in hex:
the console shows it, `miwei-server signing-key` prints it, every pack and seal names it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from loguru import logger

from server.filemodes import FILE_MODE, FOLDER_MODE, sqlite_path

KEY_FILE = "signing-key.pem"
SYSTEM_STATE_DIR = "/var/lib/miwei-server"  # the unit's StateDirectory (server/service.py)


class SigningKeyError(Exception):
    """The key file cannot be read or made."""


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public_pem: str
    fingerprint: str  # SHA-256 of the raw public key, hex
    path: str

    def sign(self, data: bytes) -> str:
        """The Ed25519 signature of `data`, base64."""
        return base64.b64encode(self.private.sign(data)).decode("ascii")


def key_path(database_url: str, configured: str | None) -> str:
    """`server.signing_key_file`, or signing-key.pem beside the SQLite database, or in the state folder."""
    if configured:
        return configured
    db = sqlite_path(database_url)
    return os.path.join(os.path.dirname(os.path.abspath(db)) if db else SYSTEM_STATE_DIR, KEY_FILE)


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public(pem: bytes | str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError for anything else."""
    key = serialization.load_pem_public_key(pem.encode("ascii") if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify(public: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create(path: str) -> SigningKey:
    """The key at `path`, made (0600, its folder 0700 when new) when there is none."""
    try:
        if not os.path.exists(path):
            _create(path)
        mode = os.stat(path).st_mode
        if mode & 0o077:
            logger.warning("signing key open to other users path={!r} mode={:04o} fix={!r}", path, stat.S_IMODE(mode), f"chmod 600 {path}")
        with open(path, "rb") as f:
            private = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"cannot use the signing key {path}: {exc}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    public = private.public_key()
    return SigningKey(private, public_pem(public), fingerprint(public), path)


def _create(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=FOLDER_MODE, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    temp = f"{path}.{os.getpid()}.new"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)  # whole or not at all; never replaces a key
    except FileExistsError:  # another process made it first: use theirs
        return
    finally:
        os.unlink(temp)
    with open(path + ".pub.pem", "w", encoding="ascii") as f:  # public: readable is fine
        f.write(public_pem(private.public_key()))
    logger.info("signing key created path={!r} fingerprint={}", path, fingerprint(private.public_key()))


class Signer:
    """The key, loaded (made on first use) once per process; the app and the commands share it."""

    def __init__(self, path: str):
        self.path = path
        self._key: SigningKey | None = None
        self._lock = threading.Lock()

    def key(self) -> SigningKey:
        with self._lock:
            if self._key is None:
                self._key = load_or_create(self.path)
            return self._key
