"""The ``GatewayBus`` port (fast, lossy delivery to one gateway) and its memory backend.

Backends needing an extra library (``redis``) are imported by module name.
"""

from chatcore.bus._base import GatewayBus
from chatcore.bus.memory import MemoryGatewayBus

__all__ = ["GatewayBus", "MemoryGatewayBus"]
