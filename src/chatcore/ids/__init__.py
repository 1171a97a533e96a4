"""Identifiers: 64-bit Snowflake ``message_id``\\ s and the leases of their node ids.

Layout: ``_snowflake`` is the pure packing logic and generator (no I/O), ``_base``
the ``NodeIdLease`` port; backends are sibling modules imported by name
(``chatcore.ids.memory``), so that an optional backend's library is only needed
when it is used.
"""

from chatcore.ids._base import NodeIdLease, NodeLease
from chatcore.ids._snowflake import (
    DEFAULT_EPOCH_MS,
    MAX_NODE_ID,
    MAX_SEQUENCE,
    SnowflakeGenerator,
    SnowflakeParts,
    pack_snowflake,
    parse_snowflake,
)

__all__ = [
    "DEFAULT_EPOCH_MS",
    "MAX_NODE_ID",
    "MAX_SEQUENCE",
    "NodeIdLease",
    "NodeLease",
    "SnowflakeGenerator",
    "SnowflakeParts",
    "pack_snowflake",
    "parse_snowflake",
]
