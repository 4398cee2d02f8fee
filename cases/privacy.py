"""Caller numbers at rest: encrypted for reading back, keyed-hashed for looking up.

A database dump must not reveal who called a citizen hotline (a complaint or a report 举报 can
be dangerous for the caller). So the plain number never reaches the database:

* ``caller_number_enc`` holds AES-256-GCM ciphertext, readable only with the secret key;
* ``caller_number_hash`` holds HMAC-SHA256 of the normalised number, so "every case from this
  number" is an indexed equality look-up without decrypting anything. A plain SHA-256 would not
  do: phone numbers are few enough to hash them all, so the hash must be keyed.

Both keys are derived from the one configured secret with HKDF under distinct labels, so the
two uses never share key material. Ciphertexts start with a version byte so that a later key
rotation can tell old rows from new ones.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cases.errors import CallerNumberUnreadable

_VERSION = b"\x01"
_NONCE_LEN = 12
# Binds the ciphertext to its purpose: a blob copied into another encrypted column won't open.
_AAD = b"hotline.cases.caller_number"
_EMAIL_AAD = b"hotline.cases.caller_email"
_FORMATTING = re.compile(r"[\s\-().]")
# What Asterisk and carriers put in CALLERID(num)/(name) when the caller withheld it or there
# is none: not a number, so never stored, looked up or masked as one.
NO_CALLER = frozenset({"", "anonymous", "unknown", "<unknown>", "restricted", "private",
                       "unavailable", "withheld"})


def is_withheld(value: str | None) -> bool:
    """No real caller number (or name): missing, empty or one of the placeholders."""
    return value is None or value.strip().lower() in NO_CALLER


def normalize_number(number: str) -> str:
    """Drop formatting (spaces, dashes, dots, brackets) so that the same line always hashes the
    same. Country prefixes are not rewritten: that needs the centre's numbering plan, and
    Asterisk hands us the number consistently for one trunk anyway."""
    return _FORMATTING.sub("", number.strip())


def mask_number(number: str | None) -> str:
    """Show enough of a number to recognise it, not enough to dial it.

    Long numbers (8+ characters) keep the first 3 and last 4: ``13800138000 -> 138****8000``.
    Shorter ones (extensions, short codes) keep only the last 2, and 1-2 characters are hidden
    whole, because first-3-plus-last-4 would show all of them. A withheld number (a
    placeholder such as ``anonymous``) is no number: ``""``, as for none at all, rather than
    a masked placeholder (``ano**mous``) that reads like a number.
    """
    if number is None or is_withheld(number):
        return ""
    n = normalize_number(number)
    if len(n) >= 8:
        return n[:3] + "*" * (len(n) - 7) + n[-4:]
    if len(n) >= 3:
        return "*" * (len(n) - 2) + n[-2:]
    return "*" * len(n)


def _derive(secret: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret)


class NumberCipher:
    """Encrypts, decrypts and hashes caller numbers with keys derived from one secret."""

    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < 8:
            raise ValueError("secret_key must be at least 8 characters")
        secret = secret_key.encode()
        self._aead = AESGCM(_derive(secret, b"hotline/cases/caller-number/aes-256-gcm/v1"))
        self._hmac_key = _derive(secret, b"hotline/cases/caller-number/hmac-sha256/v1")
        # Tells keys apart without revealing them (one-way, its own derivation).
        self.fingerprint = _derive(secret, b"hotline/cases/key-fingerprint/v1").hex()

    def encrypt(self, number: str) -> bytes:
        return self._seal(normalize_number(number).encode(), _AAD)

    def decrypt(self, blob: bytes) -> str:
        return self._unseal(blob, _AAD)

    def encrypt_email(self, email: str) -> bytes:
        """E-mail addresses (Open311, web forms) are as identifying as numbers."""
        return self._seal(email.strip().encode(), _EMAIL_AAD)

    def decrypt_email(self, blob: bytes) -> str:
        return self._unseal(blob, _EMAIL_AAD)

    def _seal(self, plain: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE_LEN)  # random 96-bit nonces: safe far beyond our volumes
        return _VERSION + nonce + self._aead.encrypt(nonce, plain, aad)

    def _unseal(self, blob: bytes, aad: bytes) -> str:
        if blob[:1] != _VERSION:
            raise CallerNumberUnreadable(f"unknown ciphertext version {blob[:1]!r}")
        nonce, ct = blob[1 : 1 + _NONCE_LEN], blob[1 + _NONCE_LEN :]
        try:
            return self._aead.decrypt(nonce, ct, aad).decode()
        except InvalidTag as e:
            raise CallerNumberUnreadable(
                "caller details cannot be decrypted: is this the secret key they were written "
                "with?") from e

    def lookup_hash(self, number: str) -> str:
        """Hex HMAC-SHA256 of the normalised number: equal numbers, equal hashes."""
        return hmac.new(self._hmac_key, normalize_number(number).encode(), hashlib.sha256).hexdigest()
