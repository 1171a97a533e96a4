"""The pipeline stages, usable one by one or assembled by :class:`chatcore.ChatNode`."""

from chatcore.pipeline.chats import ChatDirectory
from chatcore.pipeline.hub import ConnectionHub, LocalConnection
from chatcore.pipeline.reader import HistoryReader
from chatcore.pipeline.records import ReceiptSubmitted, Submitted, Topics
from chatcore.pipeline.router import Accepted, Router
from chatcore.pipeline.sequencer import PartitionState, Sequencer
from chatcore.pipeline.stages import STAGES, Stage
from chatcore.pipeline.workers import DeliveryWorker, HistoryWorker, ReceiptWorker

__all__ = [
    "Accepted",
    "ChatDirectory",
    "ConnectionHub",
    "DeliveryWorker",
    "HistoryReader",
    "HistoryWorker",
    "LocalConnection",
    "PartitionState",
    "ReceiptSubmitted",
    "ReceiptWorker",
    "Router",
    "STAGES",
    "Sequencer",
    "Stage",
    "Submitted",
    "Topics",
]
