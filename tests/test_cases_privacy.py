"""Caller-number privacy helpers: masking, encryption, keyed look-up hash (no database)."""

from __future__ import annotations

import hashlib

import pytest

from cases import CallerNumberUnreadable, mask_number
from cases.privacy import NumberCipher, normalize_number


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("13800138000", "138****8000"),      # mobile (CN): first 3, last 4
        ("02112345678", "021****5678"),      # landline with area code
        ("+8613800138000", "+86*******8000"),
        ("138 0013-8000", "138****8000"),    # formatting ignored
        ("12345678", "123*5678"),            # shortest "long" number
        ("5551234", "*****34"),              # local number: last 2 only
        ("8001", "**01"),                    # extension
        ("110", "*10"),
        ("42", "**"),                        # too short to show anything
        ("", ""),
        (None, ""),
        # Withheld (Asterisk's and carriers' placeholders): no number, not "ano**mous".
        ("anonymous", ""), ("Anonymous", ""), ("<unknown>", ""), ("unknown", ""),
        ("withheld", ""), ("restricted", ""), (" private ", ""),
    ],
)
def test_mask_number(number: str | None, masked: str) -> None:
    assert mask_number(number) == masked


def test_masked_long_number_never_shows_the_middle() -> None:
    for n in ("13800138000", "+8613800138000", "0085291234567"):
        m = mask_number(n)
        assert len(m) == len(n) and m[3:-4] == "*" * (len(n) - 7)


def test_encrypt_round_trip_and_fresh_nonce() -> None:
    c = NumberCipher("k" * 32)
    a, b = c.encrypt("13800138000"), c.encrypt("13800138000")
    assert a != b  # random nonce: equal numbers do not give equal ciphertexts
    assert b"13800138000" not in a
    assert c.decrypt(a) == c.decrypt(b) == "13800138000"


def test_wrong_key_cannot_decrypt() -> None:
    blob = NumberCipher("k" * 32).encrypt("13800138000")
    with pytest.raises(CallerNumberUnreadable):
        NumberCipher("other-key-000000").decrypt(blob)
    with pytest.raises(CallerNumberUnreadable):
        NumberCipher("k" * 32).decrypt(b"\x09" + blob[1:])


def test_lookup_hash_is_keyed_and_normalised() -> None:
    c = NumberCipher("k" * 32)
    h = c.lookup_hash("13800138000")
    assert h == c.lookup_hash(" 138-0013 8000 ")
    assert h != c.lookup_hash("13800138001")
    assert h != NumberCipher("another-key-1234").lookup_hash("13800138000")
    # Not a plain hash: one could hash every phone number and reverse it.
    assert h != hashlib.sha256(b"13800138000").hexdigest()


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        NumberCipher("short")


def test_normalize_number() -> None:
    assert normalize_number(" (021) 1234-5678 ") == "02112345678"
    assert normalize_number("+86 138.0013.8000") == "+8613800138000"
