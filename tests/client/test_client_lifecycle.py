"""ChatClient over an in-memory fake server: close codes, heartbeats, timeouts, backpressure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import pytest

from chatcore.client import (
    ChatClient,
    ClientOptions,
    Connected,
    Disconnected,
    MessageReceived,
    Transport,
)
from chatcore.errors import ChatcoreClosed, Unauthorized, Unavailable
from chatcore.protocol import History, ListChats, Ping, Send
from tests.client.fake_server import FakeServer

pytestmark = pytest.mark.anyio

URL = "ws://fake/ws"
QUICK = ClientOptions(
    backoff_initial_s=5.0,  # long: a reconnect seen quickly was not a back-off
    backoff_max_s=5.0,
    request_timeout_s=2.0,
    connect_timeout_s=2.0,
)


@asynccontextmanager
async def fake_server() -> AsyncIterator[FakeServer]:
    async with anyio.create_task_group() as tg:
        yield FakeServer(tg)
        tg.cancel_scope.cancel()


def client_for(
    server: FakeServer, user: str = "alice", options: ClientOptions = QUICK
) -> ChatClient:
    # the fake server takes the token as the user id
    return ChatClient(URL, token=user, device="d1", options=options, connector=server.connector)


async def collect(client: ChatClient, into: list[object]) -> None:
    async for event in client:
        into.append(event)


async def test_connects_and_matches_answers_to_requests() -> None:
    async with fake_server() as server, client_for(server) as client:
        assert client.connected
        assert client.user == "alice"
        assert await client.ping() >= 0
        assert await client.chats() == []
        conn = server.connections[0]
        ids = [getattr(f, "id", None) for f in conn.received]
        assert len(ids) == len(set(ids)), "every request has its own id"


async def test_4001_stops_for_good_and_ends_the_event_stream() -> None:
    async with fake_server() as server, client_for(server) as client:
        events: list[object] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, client, events)
            await server.connections[0].close(4001)
            with anyio.fail_after(5):
                while not any(isinstance(e, Disconnected) for e in events):
                    await anyio.sleep(0.01)
        stop = [e for e in events if isinstance(e, Disconnected)][-1]
        assert (stop.close_code, stop.reconnecting) == (4001, False)
        assert isinstance(stop.error, Unauthorized)
        with pytest.raises(Unauthorized):
            await client.send("c1", "x")
        with pytest.raises(Unauthorized):
            await client.ping()
        await anyio.sleep(0.2)
        assert len(server.connections) == 1, "no reconnect after 4001"
        assert not client.connected


async def test_a_refused_hello_raises_unauthorized_on_enter() -> None:
    async with fake_server() as server:
        server.refuse_tokens = True
        with pytest.raises(Unauthorized):
            async with client_for(server):
                pass
        assert len(server.connections) == 1


@pytest.mark.parametrize("code", [1001, 1012, 4008])
async def test_going_away_and_slow_consumer_reconnect_at_once(code: int) -> None:
    async with fake_server() as server, client_for(server) as client:
        await anyio.sleep(1.1)  # a session that lasted: reconnect without back-off
        await server.connections[0].close(code)
        with anyio.fail_after(2):  # well under the 5 s back-off
            await server.wait_connections(2)
            while not client.connected:
                await anyio.sleep(0.01)
        assert await client.ping() >= 0


async def test_other_closes_back_off_before_reconnecting() -> None:
    options = ClientOptions(backoff_initial_s=0.3, backoff_max_s=0.3)
    async with fake_server() as server, client_for(server, options=options) as client:
        await server.connections[0].close(1011)
        started = anyio.current_time()
        await server.wait_connections(2)
        waited = anyio.current_time() - started
        assert 0.14 <= waited < 2.0, f"reconnected after {waited:.2f} s"
        with anyio.fail_after(2):
            while not client.connected:
                await anyio.sleep(0.01)


async def test_a_send_in_flight_is_resent_with_its_id_after_a_drop() -> None:
    options = ClientOptions(backoff_initial_s=0.05, backoff_max_s=0.05)
    async with fake_server() as server, client_for(server, options=options) as client:
        server.members["c1"] = {"alice"}
        server.ignore.add(Send)  # the first connection takes the send and never answers
        async with anyio.create_task_group() as tg:
            accepted = []

            async def send() -> None:
                accepted.append(await client.send("c1", "hello", client_msg_id="m-1"))

            tg.start_soon(send)
            first = server.connections[0]
            with anyio.fail_after(2):
                while not any(isinstance(f, Send) for f in first.received):
                    await anyio.sleep(0.01)
            server.ignore.clear()
            await first.close(None)  # dropped without a close frame
        (answer,) = accepted
        assert answer.client_msg_id == "m-1"
        second = server.connections[1]
        (resent,) = [f for f in second.received if isinstance(f, Send)]
        (original,) = [f for f in first.received if isinstance(f, Send)]
        assert resent.client_msg_id == original.client_msg_id == "m-1"
        assert resent.id != original.id, "a new request id on the new connection"
        assert len(server.messages["c1"]) == 1


async def test_overloaded_sends_and_requests_are_sent_again_after_retry_after() -> None:
    async with fake_server() as server, client_for(server) as client:
        server.members["c1"] = {"alice"}
        server.overloaded = {Send: 2, History: 1}
        started = anyio.current_time()
        accepted = await client.send("c1", "hello", client_msg_id="m-1")
        assert accepted.client_msg_id == "m-1"
        assert anyio.current_time() - started >= 0.1  # two waits of retry_after_ms
        sends = [f for f in server.connections[0].received if isinstance(f, Send)]
        assert [f.client_msg_id for f in sends] == ["m-1"] * 3
        page = await client.history_page("c1")
        assert [m.body for m in page.messages] == ["hello"]
        assert len(server.connections) == 1  # refusals keep the connection


async def test_an_unanswered_heartbeat_drops_the_connection() -> None:
    options = ClientOptions(heartbeat_s=0.1, backoff_initial_s=0.05, backoff_max_s=0.05)
    async with fake_server() as server, client_for(server, options=options):
        server.ignore.add(Ping)
        await server.wait_connections(2, timeout_s=3)
        pings = [f for f in server.connections[0].received if isinstance(f, Ping)]
        assert pings, "the client pinged"


async def test_heartbeats_keep_a_quiet_connection() -> None:
    options = ClientOptions(heartbeat_s=0.05)
    async with fake_server() as server, client_for(server, options=options) as client:
        await anyio.sleep(0.4)
        pings = [f for f in server.connections[0].received if isinstance(f, Ping)]
        assert len(pings) >= 3
        assert len(server.connections) == 1
        assert client.connected


async def test_an_unanswered_request_times_out_as_unavailable() -> None:
    options = ClientOptions(request_timeout_s=0.2)
    async with fake_server() as server, client_for(server, options=options) as client:
        server.ignore.add(ListChats)
        with pytest.raises(Unavailable, match="no answer"):
            await client.chats()
        assert client.connected, "a slow answer is not a dead connection"


async def test_no_server_means_unavailable_on_enter() -> None:
    async def refuse(url: str, subprotocols: Sequence[str]) -> Transport:
        raise Unavailable("connection refused")

    options = ClientOptions(connect_timeout_s=0.3, backoff_initial_s=0.05, backoff_max_s=0.05)
    client = ChatClient(URL, token="t", device="d", options=options, connector=refuse)
    with pytest.raises(Unavailable, match="no session"):
        async with client:
            pass


async def test_a_full_event_queue_loses_nothing() -> None:
    """Pushes that find no room are fetched from history once the app reads again."""
    options = ClientOptions(event_queue=4, max_buffered=4)
    async with fake_server() as server:
        server.members["c1"] = {"alice"}
        async with client_for(server, options=options) as client:
            for i in range(1, 61):
                await server.publish(server.add_message("c1", "bob", f"m{i}"))
            await anyio.sleep(0.2)  # nobody reads: the queue and the inbox fill up
            seqs: list[int] = []
            with anyio.fail_after(5):
                async for event in client:
                    if isinstance(event, MessageReceived):
                        seqs.append(event.seq)
                        if event.seq == 60:
                            break
            assert seqs == list(range(1, 61))
            history = [f for f in server.connections[0].received if type(f).__name__ == "History"]
            assert history, "the overflow came back through history"


async def test_lost_pushes_are_filled_in_order() -> None:
    async with fake_server() as server:
        server.members["c1"] = {"alice"}
        server.lose_push = lambda m: m.seq in {2, 3, 7}
        async with client_for(server) as client:
            for i in range(1, 11):
                await server.publish(server.add_message("c1", "bob", f"m{i}"))
            seqs: list[int] = []
            with anyio.fail_after(5):
                async for event in client:
                    if isinstance(event, MessageReceived):
                        seqs.append(event.seq)
                        if event.seq == 10:
                            break
            assert seqs == list(range(1, 11))
            assert client.cursors() == {"c1": 10}


async def test_reconnect_syncs_from_the_cursor() -> None:
    options = ClientOptions(backoff_initial_s=0.05, backoff_max_s=0.05)
    async with fake_server() as server:
        server.members["c1"] = {"alice"}
        for i in range(1, 4):
            server.add_message("c1", "bob", f"m{i}")
        async with client_for(server, options=options) as client:
            events: list[object] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(collect, client, events)
                with anyio.fail_after(5):
                    while client.cursors().get("c1") != 3:
                        await anyio.sleep(0.01)
                await server.connections[0].close(None)
                for i in range(4, 8):  # sent while alice is away
                    server.add_message("c1", "bob", f"m{i}")
                with anyio.fail_after(5):
                    while client.cursors().get("c1") != 7:
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
            seqs = [e.seq for e in events if isinstance(e, MessageReceived)]
            assert seqs == list(range(1, 8))
            syncs = [f for f in server.connections[1].received if type(f).__name__ == "Sync"]
            assert any(getattr(s, "cursors", None) == {"c1": 3} for s in syncs)
            connected = [e for e in events if isinstance(e, Connected)]
            assert [c.reconnected for c in connected] == [False, True]


async def test_lifecycle_rules() -> None:
    async with fake_server() as server:
        client = client_for(server)
        with pytest.raises(ChatcoreClosed):
            await client.ping()  # not entered yet
        async with client:
            with pytest.raises(RuntimeError):
                await client.__aenter__()
        await client.aclose()  # idempotent
        with pytest.raises(ChatcoreClosed):
            await client.send("c1", "late")
        with anyio.fail_after(1):  # the stream ends: iterating it returns
            async for _ in client.events():
                pass
        with pytest.raises(RuntimeError):
            async with client:
                pass


async def test_aclose_inside_the_block_does_not_cancel_the_app() -> None:
    async with fake_server() as server, client_for(server) as client:
        await client.aclose()
        await anyio.sleep(0.01)  # still running: only the client's tasks were cancelled
        assert not client.connected


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        ChatClient(URL, device="d")
    with pytest.raises(ValueError):
        ChatClient(URL, device="d", token="t", token_provider=lambda: "t")
    with pytest.raises(ValueError):
        ChatClient(URL, device="d", token="t", subprotocol="chatcore.v2")
    with pytest.raises(ValueError):
        ChatClient("http://host/ws", device="d", token="t")
    with pytest.raises(ValueError):
        ClientOptions(history_page=500)
    with pytest.raises(ValueError):
        ClientOptions(request_timeout_s=0)
    with pytest.raises(ValueError):
        ClientOptions(backoff_initial_s=2, backoff_max_s=1)
