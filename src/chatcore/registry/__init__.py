"""The ``ConnectionRegistry`` port (user → gateway, device, connection) and its memory backend.

Backends needing an extra library (``redis``) are imported by module name.
"""

from chatcore.registry._base import ConnectionRegistry
from chatcore.registry.memory import MemoryConnectionRegistry

__all__ = ["ConnectionRegistry", "MemoryConnectionRegistry"]
