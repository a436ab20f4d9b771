"""The store's pipelined Redis connection: replies go to their callers in order, through cancellations,
split reads, lost connections, silent servers and a Redis that forgot its scripts.

The protocol cases feed bytes to the connection's protocol object directly; the rest run against the
test Redis (``KUBEOIDC_TEST_REDIS_URL``) or a socket of the test's own.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
import uvloop

from kubeoidc_provider.storage.redis import RedisStorage
from kubeoidc_provider.storage.redis_connection import (
    Address,
    ConnectOptions,
    RedisConnection,
    Reply,
    ReplyError,
    Script,
    _Pipeline,
    encode_command,
    parse_reply,
)

# --- the protocol, without a server ---------------------------------------------------------------


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True


def pipeline_on(transport: RecordingTransport, reply_timeout: float | None = None) -> _Pipeline:
    pipeline = _Pipeline(asyncio.get_running_loop(), reply_timeout)
    pipeline.connection_made(transport)
    return pipeline


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert encode_command(["SET", b"k\r\n", 42]) == b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n42\r\n"
    assert encode_command(["ECHO", "é"]) == b"*2\r\n$4\r\nECHO\r\n$2\r\n\xc3\xa9\r\n"


def test_every_kind_of_reply_is_read() -> None:
    wire = (
        b"+OK\r\n:-7\r\n$-1\r\n$0\r\n\r\n*-1\r\n"
        b"*3\r\n$2\r\nab\r\n*1\r\n:1\r\n-ERR inside\r\n-WRONGTYPE bad\r\n"
    )
    replies: list[Reply] = []
    pos = 0
    while pos < len(wire):
        reply, pos = parse_reply(wire, pos)
        replies.append(reply)
    assert replies[:5] == [b"OK", -7, None, b"", None]
    nested = replies[5]
    assert isinstance(nested, list)
    assert nested[:2] == [b"ab", [1]]
    assert isinstance(nested[2], ReplyError)
    assert str(nested[2]) == "ERR inside"
    assert isinstance(replies[6], ReplyError)
    assert replies[6].code == "WRONGTYPE"


async def test_commands_of_one_pass_of_the_loop_leave_in_one_write() -> None:
    transport = RecordingTransport()
    pipeline = pipeline_on(transport)
    replies = [pipeline.send(encode_command(["ECHO", str(n)])) for n in range(50)]
    assert transport.written == []
    await asyncio.sleep(0)
    assert transport.written == [b"".join(encode_command(["ECHO", str(n)]) for n in range(50))]
    pipeline.close()
    await asyncio.gather(*replies, return_exceptions=True)


async def test_replies_cut_anywhere_reach_their_callers_in_order() -> None:
    pipeline = pipeline_on(RecordingTransport())
    sent = [pipeline.send(b"") for _ in range(4)]
    wire = b"$5\r\nfirst\r\n*2\r\n$3\r\nabc\r\n:2\r\n-NOSCRIPT no such script\r\n$-1\r\n"
    for at in range(len(wire)):  # one byte at a time
        pipeline.data_received(wire[at : at + 1])
    assert await sent[0] == b"first"
    assert await sent[1] == [b"abc", 2]
    with pytest.raises(ReplyError, match="NOSCRIPT"):
        await sent[2]
    assert await sent[3] is None


async def test_a_cancelled_caller_still_takes_its_own_reply_from_the_stream() -> None:
    pipeline = pipeline_on(RecordingTransport())
    first, second = pipeline.send(b""), pipeline.send(b"")
    first.cancel()
    pipeline.data_received(b"$1\r\na\r\n$1\r\nb\r\n")
    assert await second == b"b"


@pytest.mark.parametrize("wire", [b"?what\r\n", b"+OK\r\n+OK\r\n"], ids=["not-resp", "unasked-for"])
async def test_a_stream_that_cannot_be_followed_fails_every_waiting_command_and_is_dropped(
    wire: bytes,
) -> None:
    transport = RecordingTransport()
    pipeline = pipeline_on(transport)
    waiting = pipeline.send(b"")
    pipeline.data_received(wire)
    if wire.startswith(b"+"):
        assert await waiting == b"OK"
    else:
        with pytest.raises(ConnectionError, match="not RESP2"):
            await waiting
    assert transport.aborted
    assert pipeline.failure is not None
    with pytest.raises(ConnectionError):
        pipeline.send(b"")


async def test_a_reply_that_does_not_come_in_time_fails_the_commands_and_drops_the_connection() -> None:
    transport = RecordingTransport()
    pipeline = pipeline_on(transport, reply_timeout=0.05)
    answered, unanswered = pipeline.send(b""), pipeline.send(b"")
    pipeline.data_received(b":1\r\n")
    assert await answered == 1
    with pytest.raises(TimeoutError, match=r"did not answer within 0\.05 s"):
        await unanswered
    assert transport.aborted


async def test_a_command_sent_after_an_answered_one_has_its_own_full_reply_timeout() -> None:
    pipeline = pipeline_on(RecordingTransport(), reply_timeout=0.2)
    answered = pipeline.send(b"")
    await asyncio.sleep(0.1)
    pipeline.data_received(b":1\r\n")
    assert await answered == 1
    sent_at = time.monotonic()
    unanswered = pipeline.send(b"")  # the watchdog armed for the first is due before this one's time
    with pytest.raises(TimeoutError, match="did not answer"):
        await asyncio.wait_for(unanswered, 2)
    assert time.monotonic() - sent_at >= 0.19


def test_an_error_reply_does_not_repeat_the_arguments_redis_quotes() -> None:
    error = ReplyError("ERR unknown command 'EVALSHA', with args beginning with: '{\"sub\":\"alice\"}' ")
    assert error.code == "ERR"
    assert "alice" not in str(error)
    assert str(error) == "ERR unknown command 'EVALSHA'"


# --- against the test Redis -----------------------------------------------------------------------


@pytest.fixture
async def connection(redis_url: str) -> AsyncIterator[RedisConnection]:
    storage = RedisStorage.from_url(redis_url)
    yield storage.connection
    await storage.close()


async def kill(redis_url: str, number: Reply) -> None:
    admin = redis.asyncio.Redis.from_url(redis_url)
    try:
        await admin.client_kill_filter(_id=str(number))
    finally:
        await admin.aclose()


async def killed(redis_url: str, connection: RedisConnection) -> None:
    """Have Redis close ``connection``'s socket, as a restart or a ``timeout`` setting would, and wait
    until the connection has seen it."""
    number = await connection.call("CLIENT", "ID")
    pipeline = connection._pipeline
    assert pipeline is not None
    await kill(redis_url, number)
    await asyncio.wait_for(pipeline.gone, 5)


@pytest.mark.redis
async def test_concurrent_commands_get_their_own_replies(connection: RedisConnection) -> None:
    replies = await asyncio.gather(*(connection.call("ECHO", f"reply {n}") for n in range(500)))
    assert replies == [f"reply {n}".encode() for n in range(500)]


@pytest.mark.redis
async def test_a_value_larger_than_one_read_comes_back_whole(connection: RedisConnection) -> None:
    value, key = bytes(range(256)) * 8192, f"kubeoidc-test:{uuid.uuid4().hex}"  # 2 MiB, CR LF included
    try:
        await connection.call("SET", key, value)
        assert await connection.call("GET", key) == value
    finally:
        await connection.call("DEL", key)


@pytest.mark.redis
async def test_an_error_reply_is_raised_to_its_caller_only(connection: RedisConnection) -> None:
    wrong, right = await asyncio.gather(
        connection.call("NOSUCHCOMMAND"), connection.call("PING"), return_exceptions=True
    )
    assert isinstance(wrong, ReplyError)
    assert wrong.code == "ERR"
    assert right == b"PONG"


@pytest.mark.redis
async def test_a_script_redis_forgot_is_sent_again_whole(connection: RedisConnection) -> None:
    script = Script("return ARGV[1] .. KEYS[1]")
    assert await connection.run_script(script, ["k"], ["v"]) == b"vk"
    await connection.call("SCRIPT", "FLUSH")
    assert await connection.run_script(script, ["k"], ["w"]) == b"wk"
    assert await connection.call("SCRIPT", "EXISTS", script.digest) == [1]


@pytest.mark.redis
async def test_a_connection_redis_closed_is_opened_again_for_the_next_command(
    redis_url: str, connection: RedisConnection
) -> None:
    before = await connection.call("CLIENT", "ID")
    await killed(redis_url, connection)
    assert await connection.call("PING") == b"PONG"
    assert await connection.call("CLIENT", "ID") != before


@pytest.mark.redis
async def test_a_command_in_flight_when_the_connection_dies_fails_instead_of_hanging(
    redis_url: str, connection: RedisConnection
) -> None:
    number = await connection.call("CLIENT", "ID")
    blocked = asyncio.ensure_future(connection.call("BLPOP", f"kubeoidc-test:{uuid.uuid4().hex}", 30))
    await asyncio.sleep(0.1)  # BLPOP is on its way
    await kill(redis_url, number)
    with pytest.raises(ConnectionError, match="lost"):
        await asyncio.wait_for(blocked, 5)
    assert await connection.call("PING") == b"PONG"


@pytest.mark.redis
async def test_a_silent_redis_is_given_up_after_the_reply_timeout_and_the_next_command_works(
    redis_url: str,
) -> None:
    storage = RedisStorage.from_url(f"{redis_url}?socket_timeout=0.3")
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"did not answer within 0\.3 s"):
            await storage.connection.call("BLPOP", "kubeoidc-test:never", 10)
        assert time.monotonic() - started < 5
        assert await storage.connection.call("PING") == b"PONG"
    finally:
        await storage.close()


@pytest.mark.redis
async def test_the_client_name_is_set_on_each_connection(redis_url: str) -> None:
    storage = RedisStorage.from_url(f"{redis_url}?client_name=kubeoidc-provider-0")
    try:
        assert await storage.connection.call("CLIENT", "GETNAME") == b"kubeoidc-provider-0"
        await killed(redis_url, storage.connection)
        assert await storage.connection.call("CLIENT", "GETNAME") == b"kubeoidc-provider-0"
    finally:
        await storage.close()


@pytest.mark.redis
async def test_each_new_connection_asks_where_redis_is(redis_url: str) -> None:
    fixed = RedisStorage.from_url(redis_url).connection
    address = await fixed._locate()
    await fixed.close()
    asked: list[Address] = []

    async def locate() -> Address:
        asked.append(address)
        return address

    connection = RedisConnection(locate, fixed.options)
    try:
        await asyncio.gather(*(connection.call("PING") for _ in range(20)))
        assert len(asked) == 1, "concurrent first commands share one connection"
        await killed(redis_url, connection)
        await connection.call("PING")
        assert len(asked) == 2
    finally:
        await connection.close()


@pytest.mark.redis
async def test_a_closed_connection_refuses_further_commands(connection: RedisConnection) -> None:
    await connection.call("PING")
    await connection.close()
    with pytest.raises(ConnectionError, match="closed"):
        await connection.call("PING")


# --- servers that do not help -----------------------------------------------------------------------


async def refusing_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


async def test_an_address_nobody_listens_on_fails_with_the_address() -> None:
    port = await refusing_port()
    storage = RedisStorage.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(ConnectionError, match=f"could not connect to Redis at 127.0.0.1:{port}"):
            await storage.get("code", "k")
    finally:
        await storage.close()


@pytest.mark.redis
def test_the_store_works_on_uvloop_as_the_provider_runs_it(redis_url: str) -> None:
    async def exercise() -> None:
        storage = RedisStorage.from_url(redis_url, prefix="kubeoidc-test:uvloop:")
        try:
            await storage.put("code", "k", {"v": 1}, ttl=30)
            found = await asyncio.gather(*(storage.consume("code", "k") for _ in range(10)))
            assert sorted(bool(one and one.first) for one in found) == [False] * 9 + [True]
            await killed(redis_url, storage.connection)
            await storage.delete("code", "k")
            assert await storage.get("code", "k") is None
        finally:
            await storage.close()

    uvloop.run(exercise())


@pytest.mark.redis
async def test_connections_send_tcp_keepalive_probes_unless_the_url_turns_them_off(redis_url: str) -> None:
    for url, expected in ((redis_url, (1, 30, 5, 3)), (f"{redis_url}?socket_keepalive=false", (0,))):
        storage = RedisStorage.from_url(url)
        try:
            await storage.connection.call("PING")
            assert storage.connection._pipeline is not None
            transport = storage.connection._pipeline._transport
            assert transport is not None
            sock = transport.get_extra_info("socket")
            options = [sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)]
            if expected[0]:
                options += [
                    sock.getsockopt(socket.IPPROTO_TCP, option)
                    for option in (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT)
                ]
            assert tuple(options) == expected
        finally:
            await storage.close()


@pytest.mark.redis
async def test_an_unknown_command_error_does_not_carry_its_arguments_into_a_log(
    connection: RedisConnection,
) -> None:
    with pytest.raises(ReplyError) as refused:
        await connection.call("NOSUCHCOMMAND", "a-stored-value")
    assert "NOSUCHCOMMAND" in str(refused.value).upper()
    assert "a-stored-value" not in str(refused.value)


@pytest.mark.redis
async def test_a_caller_cancelled_while_connecting_does_not_cancel_the_connection_others_wait_for(
    redis_url: str,
) -> None:
    fixed = RedisStorage.from_url(redis_url).connection
    address, go = await fixed._locate(), asyncio.Event()

    async def locate() -> Address:
        await go.wait()
        return address

    connection = RedisConnection(locate, fixed.options)
    try:
        first = asyncio.ensure_future(connection.call("ECHO", "first"))
        second = asyncio.ensure_future(connection.call("ECHO", "second"))
        await asyncio.sleep(0.05)
        first.cancel()
        go.set()
        assert await second == b"second"
        assert first.cancelled()
    finally:
        await connection.close()


async def test_callers_waiting_for_a_connection_when_it_is_closed_get_a_connection_error() -> None:
    never = asyncio.Event()

    async def locate() -> Address:
        await never.wait()
        raise AssertionError("not reached")

    connection = RedisConnection(locate, ConnectOptions())
    waiting = [asyncio.ensure_future(connection.call("PING")) for _ in range(3)]
    await asyncio.sleep(0.05)
    await connection.close()
    for call in waiting:
        with pytest.raises(ConnectionError, match="closed"):
            await call


class FakeRedis:
    """A server on a loopback port that answers every command with one fixed reply (or never), and
    records its connections and when the client closed each."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.closed_by_client: list[asyncio.Event] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeRedis:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def url(self, userinfo: str = "", query: str = "") -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://{userinfo}127.0.0.1:{port}/0{query}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        closed = asyncio.Event()
        self.closed_by_client.append(closed)
        try:
            while line := await reader.readline():
                if line.startswith(b"*") and self.reply is not None:  # a command's start: answer it
                    writer.write(self.reply)
                    await writer.drain()
        except ConnectionError:
            pass
        closed.set()
        writer.close()


async def test_a_refused_handshake_is_raised_and_its_connection_closed() -> None:
    async with FakeRedis(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n") as fake:
        storage = RedisStorage.from_url(fake.url("app:wrong@"))
        try:
            with pytest.raises(ReplyError, match="WRONGPASS"):
                await storage.get("code", "k")
            await asyncio.wait_for(fake.closed_by_client[0].wait(), 5)
        finally:
            await storage.close()


async def test_a_readonly_reply_drops_the_connection_so_the_next_command_finds_the_master_again() -> None:
    async with FakeRedis(b"-READONLY You can't write against a read only replica.\r\n") as fake:
        storage = RedisStorage.from_url(fake.url())
        try:
            for _ in range(2):
                with pytest.raises(ReplyError, match="READONLY"):
                    await storage.put("code", "k", {"v": 1}, ttl=30)
            assert len(fake.closed_by_client) == 2
            await asyncio.wait_for(fake.closed_by_client[0].wait(), 5)
        finally:
            await storage.close()


async def test_a_server_that_never_finishes_the_handshake_is_given_up_after_the_connect_timeout() -> None:
    async with FakeRedis(None) as fake:
        storage = RedisStorage.from_url(fake.url(":a-password@", "?socket_connect_timeout=0.2"))
        try:
            started = time.monotonic()
            with pytest.raises(
                TimeoutError, match=r"could not connect to Redis at 127\.0\.0\.1:\d+ within 0\.2 s"
            ) as e:
                await storage.get("code", "k")
            assert time.monotonic() - started < 2, "the connect timeout gave up, not the 5 s reply timeout"
            assert "a-password" not in str(e.value)
            assert fake.closed_by_client, "the connection was made; the handshake is what timed out"
        finally:
            await storage.close()


async def test_a_handshake_reply_that_comes_too_late_is_reported_as_such() -> None:
    async with FakeRedis(None) as fake:
        storage = RedisStorage.from_url(fake.url(":pw@", "?socket_timeout=0.2&socket_connect_timeout=5"))
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match=r"Redis did not answer within 0\.2 s"):
                await storage.get("code", "k")
            assert time.monotonic() - started < 2
        finally:
            await storage.close()
