"""The key directory of end-to-end encryption: each device's published public key.

Layout: the port in ``_base`` (``KeyDirectory``, ``DeviceKey``); the pure rules in
``rules`` (key shape, versions, device limit); backends as siblings (``memory``,
``sqlite``, ``redis``, ``cassandra``, the last two imported by module name). The
encryption scheme the keys serve is :mod:`chatcore.e2ee` (docs/encryption.md).
"""

from chatcore.keys._base import DeviceKey, KeyDirectory
from chatcore.keys.memory import MemoryKeyDirectory
from chatcore.keys.rules import (
    MAX_KEY_VERSION,
    PUBLIC_KEY_BYTES,
    KeyRules,
    check_key,
    check_publish,
)
from chatcore.keys.sqlite import SqliteKeyDirectory

__all__ = [
    "MAX_KEY_VERSION",
    "PUBLIC_KEY_BYTES",
    "DeviceKey",
    "KeyDirectory",
    "KeyRules",
    "MemoryKeyDirectory",
    "SqliteKeyDirectory",
    "check_key",
    "check_publish",
]
