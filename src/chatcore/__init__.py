"""chatcore: typed building blocks for real-time chat systems.

Layout: one package per area (``ids``, ``protocol``, ``log``, ``store``, ``presence``,
``registry``, ``bus``, ``cache``, ``offline``, ``fanout``, ``receipts``, ``pipeline``).
Each stateful area has its port (a ``typing.Protocol``) in ``<area>/_base.py`` and its
backends as sibling modules (``memory``, ``sqlite``, ``redis``, ``kafka``, ``cassandra``).
Pure logic (Snowflake packing, fanout planning, receipt aggregation, presence rules)
does no I/O. ``ChatNode`` assembles the whole pipeline over a chosen set of backends.
"""
