"""End-to-end encryption: the envelope an encrypted body must be, and the scheme.

Layout: ``envelope`` is the shape rule the server applies (pure, no key, no
cryptography library); ``scheme`` encrypts and decrypts with X25519, HKDF-SHA256
and AES-256-GCM for clients (needs the ``e2ee`` extra, imported by module name).
docs/encryption.md says what it protects and what it does not.
"""

from chatcore.e2ee.envelope import (
    ENVELOPE_VERSION,
    MAX_RECIPIENTS,
    Envelope,
    WrappedKey,
    decode_envelope,
    encode_envelope,
)

__all__ = [
    "ENVELOPE_VERSION",
    "MAX_RECIPIENTS",
    "Envelope",
    "WrappedKey",
    "decode_envelope",
    "encode_envelope",
]
