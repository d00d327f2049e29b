"""Encrypting the provider keys' secrets at rest, with Fernet (AES-128-CBC and HMAC-SHA256, from
the `cryptography` package) under the keys in IMAGEROUTER_KEY_ENCRYPTION_KEYS.

The first key encrypts; every key listed decrypts (MultiFernet), so an operator rotates by putting
a new key first and keeping the old one until every stored secret has been re-minted."""

from cryptography.fernet import Fernet as _Fernet
from cryptography.fernet import InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadableError(Exception):
    """A stored secret that none of the configured keys decrypts (the keys were changed)."""


def _fernet() -> MultiFernet:
    keys = settings.IMAGEROUTER_KEY_ENCRYPTION_KEYS
    if not keys:
        raise SecretUnreadableError("IMAGEROUTER_KEY_ENCRYPTION_KEYS is not set.")
    return MultiFernet([_Fernet(key) for key in keys])


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadableError(
            "A stored provider key could not be decrypted with IMAGEROUTER_KEY_ENCRYPTION_KEYS."
        ) from None
