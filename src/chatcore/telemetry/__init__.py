"""What the pipeline reports about itself: the :class:`Telemetry` port.

The pipeline calls a Telemetry object at each point an operator watches (a stage
done with a message, a store write, a presence update, a receipt told, the offline
queue, a gap in a chat's sequence). The default, :data:`NO_TELEMETRY`, does
nothing. The reference server and ``chatcore worker`` pass Prometheus metrics
(:class:`chatcore.server.metrics.ServerMetrics`); anything with these methods works.
"""

from chatcore.telemetry._base import NO_TELEMETRY, PipelineStage, Telemetry, Timer
from chatcore.telemetry.gaps import GapDetector

__all__ = ["NO_TELEMETRY", "GapDetector", "PipelineStage", "Telemetry", "Timer"]
