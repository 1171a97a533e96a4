"""Conformance suites of chatcore's ports, for any backend: the built-in ones and yours.

Each suite is a class of pytest tests. Subclass it in a test module under a name
pytest collects (``Test...``) and override its one hook fixture, which gives new
instances of your backend; every test of the suite then runs against them::

    import pytest
    from chatcore.testing import MessageStoreSuite

    class TestMyStore(MessageStoreSuite):
        durable = True  # a second instance of one test sees what the first wrote

        @pytest.fixture
        def make_store(self, tmp_path):
            async def make():
                return MyMessageStore(tmp_path / "messages")
            return make

The hook returns an async callable giving a new, not yet entered instance over
this test's own storage (empty at first); the suite enters and closes it. The
suites need pytest, hypothesis and anyio's pytest plugin (``pip install
'chatcore[testing]'``), and import no backend's client library.

The suites, their hook fixtures and their class attributes:

- ``LogSuite``: ``make_log``; ``durable``.
- ``MessageStoreSuite``, ``MembershipStoreSuite``, ``ReceiptStoreSuite``:
  ``make_store``; ``durable``.
- ``PresenceStoreSuite``: ``make_store``; ``real_time``, ``expire_returns``.
- ``ConnectionRegistrySuite``: ``make_registry``.
- ``GatewayBusSuite``: ``make_bus``.
- ``HotCacheSuite``: ``make_cache`` (its callable takes ``per_chat``).
- ``OfflineIndexSuite``: ``make_index``.
- ``BlobStoreSuite``: ``make_store``; ``durable``.
- ``PushTokenStoreSuite``: ``make_store``.
- ``UploadLedgerSuite``: ``make_store``; ``durable``.
- ``NodeIdLeaseSuite``: ``make_lease`` (its callable takes ``node_ids``); override
  ``advance`` too for a fake clock.
"""

from chatcore._extras import missing_extra

try:
    import hypothesis  # noqa: F401
    import pytest
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("testing", exc, needed_by="chatcore.testing") from exc

# Before the suites are imported: their asserts then explain a failure as a test's do.
pytest.register_assert_rewrite(
    "chatcore.testing._blob_store",
    "chatcore.testing._bus",
    "chatcore.testing._hot_cache",
    "chatcore.testing._leases",
    "chatcore.testing._log",
    "chatcore.testing._membership_store",
    "chatcore.testing._message_store",
    "chatcore.testing._offline",
    "chatcore.testing._presence",
    "chatcore.testing._push_tokens",
    "chatcore.testing._receipt_store",
    "chatcore.testing._registry",
    "chatcore.testing._uploads",
)

from chatcore.testing._blob_store import BlobStoreSuite  # noqa: E402
from chatcore.testing._bus import GatewayBusSuite  # noqa: E402
from chatcore.testing._hot_cache import HotCacheSuite  # noqa: E402
from chatcore.testing._leases import NodeIdLeaseSuite  # noqa: E402
from chatcore.testing._log import LogSuite  # noqa: E402
from chatcore.testing._membership_store import MembershipStoreSuite  # noqa: E402
from chatcore.testing._message_store import MessageStoreSuite  # noqa: E402
from chatcore.testing._offline import OfflineIndexSuite  # noqa: E402
from chatcore.testing._presence import PresenceStoreSuite  # noqa: E402
from chatcore.testing._push_tokens import PushTokenStoreSuite  # noqa: E402
from chatcore.testing._receipt_store import ReceiptStoreSuite  # noqa: E402
from chatcore.testing._registry import ConnectionRegistrySuite  # noqa: E402
from chatcore.testing._uploads import UploadLedgerSuite  # noqa: E402

__all__ = [
    "BlobStoreSuite",
    "ConnectionRegistrySuite",
    "GatewayBusSuite",
    "HotCacheSuite",
    "LogSuite",
    "MembershipStoreSuite",
    "MessageStoreSuite",
    "NodeIdLeaseSuite",
    "OfflineIndexSuite",
    "PresenceStoreSuite",
    "PushTokenStoreSuite",
    "ReceiptStoreSuite",
    "UploadLedgerSuite",
]
