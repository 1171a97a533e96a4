"""One cassandra-driver Cluster and Session, whose statements are awaited without blocking.

How this works: the driver does its I/O on its own thread (libev by default) and
reports each request through callbacks on a ``ResponseFuture``. :meth:`execute`
registers callbacks that collect every page of rows and hand them, or the error,
to an asyncio future of the running event loop with ``call_soon_threadsafe``. So
a query never blocks the event loop, and nothing but connecting, preparing and
shutting down (rare, slow, blocking calls of the driver) runs in a worker thread.
chatcore runs anyio on its asyncio backend, which this module needs.

Every error of the driver (no host, timeouts, unavailable replicas, refused
statements) becomes :class:`~chatcore.errors.Unavailable`, raised ``from`` it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import anyio.to_thread

from chatcore._extras import missing_extra
from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, InvalidRequest, Unavailable

try:
    from cassandra import ConsistencyLevel, DriverException
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
    from cassandra.connection import ConnectionException
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
    from cassandra.query import BatchStatement, BatchType, dict_factory
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("cassandra", exc, needed_by="chatcore's Cassandra backend") from exc

__all__ = [
    "DRIVER_ERRORS",
    "CassandraAdapter",
    "CassandraSession",
    "Row",
    "Statement",
    "cas_back_off",
]

T = TypeVar("T")

Row = dict[str, Any]
"""One result row, by column name (the session uses the driver's ``dict_factory``)."""

Statement = tuple[Any, Sequence[object]]
"""A prepared statement (or batch) and its bound values."""

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    DriverException,  # timeouts, unavailable replicas, refused or invalid statements
    NoHostAvailable,
    ConnectionException,
)

_LWT_APPLIED = "[applied]"


def unavailable(what: str, exc: BaseException) -> Unavailable:
    """The chatcore error for a driver error ``exc`` met while doing ``what``."""
    return Unavailable(f"cassandra: {what} failed: {type(exc).__name__}: {exc}")


async def cas_back_off(attempt: int) -> None:
    """Before a compare-and-set round: nothing the first time, then a short random pause
    growing with ``attempt`` (another change won the last round)."""
    if attempt:
        await anyio.sleep(random.uniform(0, 0.002 * attempt))


def contact_point(host: str) -> str | tuple[str, int]:
    """A driver contact point from ``"host"``, ``"host:port"`` or ``"[v6 address]:port"``."""
    if host.startswith("["):
        address, _, port = host[1:].partition("]")
        port = port.removeprefix(":")
        return (address, int(port)) if port.isdigit() else address
    address, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in address:
        return (address, int(port))
    return host


def consistency_level(name: str) -> int:
    """The driver's consistency level named ``name``; raises InvalidRequest if there is none."""
    try:
        return int(ConsistencyLevel.name_to_value[name.upper()])
    except KeyError:
        known = ", ".join(sorted(ConsistencyLevel.name_to_value))
        raise InvalidRequest(f"no Cassandra consistency level {name!r}; known: {known}") from None


class CassandraSession:
    """A connected driver Cluster and Session, closed by :meth:`aclose` (idempotent)."""

    def __init__(self, cluster: Any, session: Any, *, max_concurrency: int) -> None:
        self._cluster = cluster
        self._session = session
        self._max_concurrency = max_concurrency
        self._closed = False

    @classmethod
    async def connect(
        cls,
        hosts: Sequence[str],
        *,
        port: int,
        local_dc: str | None,
        consistency: str,
        request_timeout: float,
        connect_timeout: float,
        fetch_size: int,
        max_concurrency: int,
        protocol_version: int,
    ) -> CassandraSession:
        """Connect to the cluster (in a worker thread); raises Unavailable if no host answers.

        ``hosts``: ``"host"``, ``"host:port"`` or ``"[v6 address]:port"``; ``port`` is
        the default port. Raises InvalidRequest for a bad option.
        """
        if max_concurrency < 1 or fetch_size < 1:
            raise InvalidRequest("max_concurrency and fetch_size must be >= 1")
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=local_dc)),
            consistency_level=consistency_level(consistency),
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=request_timeout,
            row_factory=dict_factory,
        )
        cluster = Cluster(
            [contact_point(h) for h in hosts],
            port=port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=connect_timeout,
            protocol_version=protocol_version,
        )
        try:
            session = await anyio.to_thread.run_sync(cluster.connect)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(cluster.shutdown)
            if isinstance(exc, DRIVER_ERRORS):
                raise unavailable(f"connecting to {', '.join(hosts)}:{port}", exc) from exc
            raise
        session.default_fetch_size = fetch_size
        return cls(cluster, session, max_concurrency=max_concurrency)

    @property
    def driver_session(self) -> Any:
        """The driver's ``cassandra.cluster.Session`` (for operations chatcore does not wrap)."""
        return self._session

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def check_open(self) -> None:
        """Raise ChatcoreClosed after :meth:`aclose`."""
        if self._closed:
            raise ChatcoreClosed("the Cassandra session is closed")

    async def blocking(self, what: str, fn: Callable[[], T]) -> T:
        """Run a blocking driver call in a worker thread; driver errors become Unavailable."""
        self.check_open()
        try:
            return await anyio.to_thread.run_sync(fn)
        except DRIVER_ERRORS as exc:
            raise unavailable(what, exc) from exc

    async def prepare(self, statements: dict[str, str]) -> dict[str, Any]:
        """Prepare CQL statements by name (in a worker thread); raises Unavailable."""
        prepare = self._session.prepare
        return await self.blocking(
            "preparing statements", lambda: {name: prepare(cql) for name, cql in statements.items()}
        )

    async def execute(self, statement: Any, params: Sequence[object] = ()) -> list[Row]:
        """Every row the statement returns (all pages); raises Unavailable, ChatcoreClosed."""
        try:
            return await self._start(statement, params)
        except DRIVER_ERRORS as exc:
            raise unavailable(_describe(statement), exc) from exc

    async def execute_all(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """Run statements concurrently (at most ``max_concurrency`` at a time); rows in order.

        Raises Unavailable (the first failure, once all of a wave have ended) or
        ChatcoreClosed.
        """
        results: list[list[Row]] = []
        step = self._max_concurrency
        for start in range(0, len(statements), step):
            wave = statements[start : start + step]
            outcomes = await asyncio.gather(
                *(self._start(stmt, params) for stmt, params in wave), return_exceptions=True
            )
            for (stmt, _), outcome in zip(wave, outcomes, strict=True):
                if isinstance(outcome, DRIVER_ERRORS):
                    raise unavailable(_describe(stmt), outcome) from outcome
                if isinstance(outcome, BaseException):
                    raise outcome
                results.append(outcome)
        return results

    async def applied(self, statement: Any, params: Sequence[object]) -> tuple[bool, Row]:
        """Run a lightweight transaction: whether it applied, and the row it saw if not.

        Raises Unavailable (then it may or may not have applied), ChatcoreClosed.
        """
        rows = await self.execute(statement, params)
        row = rows[0]
        return bool(row[_LWT_APPLIED]), row

    @staticmethod
    def batch(statements: Sequence[Statement]) -> Any:
        """An unlogged batch of prepared statements (meant for one partition: then atomic)."""
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for statement, values in statements:
            batch.add(statement, values)
        return batch

    async def aclose(self) -> None:
        """Shut the cluster connection down (in a worker thread). Idempotent."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._cluster.shutdown)

    def _start(self, statement: Any, params: Sequence[object]) -> asyncio.Future[list[Row]]:
        """Send a statement; the future gets every page of rows, or the driver's error."""
        self.check_open()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise InvalidRequest(
                "chatcore's Cassandra backend runs on anyio's asyncio backend"
            ) from None
        done: asyncio.Future[list[Row]] = loop.create_future()
        rows: list[Row] = []
        try:
            future = self._session.execute_async(statement, params or None)
        except DRIVER_ERRORS as exc:
            done.set_exception(exc)
            return done

        def settle(result: list[Row] | None, error: BaseException | None) -> None:
            if done.done():  # the awaiting task was cancelled
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result or [])

        def hand_over(result: list[Row] | None, error: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # a closed event loop: nobody waits
                loop.call_soon_threadsafe(settle, result, error)

        def on_page(page: list[Row] | None) -> None:
            if done.cancelled():  # nobody waits: fetch no more pages
                return
            try:
                if page:
                    rows.extend(page)
                if future.has_more_pages:
                    future.start_fetching_next_page()
                else:
                    hand_over(rows, None)
            except BaseException as exc:  # the driver ignores errors raised in callbacks
                hand_over(None, exc)

        def on_error(exc: BaseException) -> None:
            hand_over(None, exc)

        future.add_callbacks(on_page, on_error)
        return done


class CassandraAdapter(ClosingContext):
    """A store over a shared session: ``aclose()`` closes this store only."""

    _STATEMENTS: ClassVar[dict[str, str]] = {}

    def __init__(self, db: CassandraSession, prepared: Mapping[str, Any]) -> None:
        self._db = db
        self._q = dict(prepared)
        self._closed = False

    async def aclose(self) -> None:
        """Stop this store, not the session; later calls raise ChatcoreClosed. Idempotent."""
        self._closed = True

    def _check(self) -> None:
        if self._closed or self._db.closed:
            raise ChatcoreClosed(f"{type(self).__name__} used after aclose()")


def _describe(statement: Any) -> str:
    """What a statement does, for error messages: its CQL, or "a batch"."""
    query = getattr(statement, "query_string", None)
    return f"`{query}`" if isinstance(query, str) else "a batch"
