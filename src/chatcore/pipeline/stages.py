"""The pipeline's identity as data: which stage reads which topic in which consumer group.

One row per consuming stage, in pipeline order (a stage's input topic is written
only by the Router or by stages before it):

============  ========  ==================  ======================
stage         role      input topic         consumer group
============  ========  ==================  ======================
sequencer     sequencer ``chat.submitted``  ``chatcore.sequencer``
history       history   ``chat.messages``   ``chatcore.history``
delivery      delivery  ``chat.messages``   ``chatcore.delivery``
receipts      receipts  ``chat.receipts``   ``chatcore.receipts``
============  ========  ==================  ======================

The group names are what deployed consumer offsets are stored under: renaming one
makes its stage read its topic again from the start.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from chatcore.pipeline.records import Topics

__all__ = ["DELIVERY", "HISTORY", "RECEIPTS", "SEQUENCER", "STAGES", "Role", "Stage"]

Role = Literal["gateway", "sequencer", "history", "delivery", "receipts"]
"""What a process may run: the gateway side (Router and ConnectionHub) or one stage."""

TopicField = Literal["submitted", "messages", "receipts"]


class Stage(NamedTuple):
    """One consuming stage of the pipeline."""

    name: str
    role: Role
    """The :class:`~chatcore.node.NodeOptions` role that runs it."""
    topic_field: TopicField
    """The :class:`~chatcore.pipeline.Topics` field naming its input topic."""
    group: str
    """Its consumer group on that topic."""

    def topic(self, topics: Topics) -> str:
        """Its input topic's name under ``topics``."""
        name: str = getattr(topics, self.topic_field)
        return name


SEQUENCER = Stage("sequencer", "sequencer", "submitted", "chatcore.sequencer")
HISTORY = Stage("history", "history", "messages", "chatcore.history")
DELIVERY = Stage("delivery", "delivery", "messages", "chatcore.delivery")
RECEIPTS = Stage("receipts", "receipts", "receipts", "chatcore.receipts")

STAGES: tuple[Stage, ...] = (SEQUENCER, HISTORY, DELIVERY, RECEIPTS)
"""Every consuming stage, in pipeline order."""
