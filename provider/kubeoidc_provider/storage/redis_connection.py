"""One pipelined connection to Redis, speaking RESP2: the store's few commands at little cost to the loop.

Every coroutine's command goes down one connection. The commands made in one pass of the event loop
leave in one write; Redis answers them in order, so each reply goes to the oldest caller still waiting
for one. That is Redis's own pipelining. redis-py's asyncio client instead takes a pooled connection for
each command, writes it and awaits its reply alone: about 55 µs of the event loop's CPU per command,
against about 6 µs here (``bench/README.md``). The store makes one to three commands per request, so on
the token path that difference is most of what the store costs.

What it keeps of a full client:

- TLS, with an :class:`ssl.SSLContext` the caller makes for each connection (the store has redis-py
  build it from the URL's ``ssl_*`` options, so they mean what redis-py documents, and rotated
  certificate files are read again);
- ``AUTH`` (with an ACL user name or without), ``SELECT`` of the database and ``CLIENT SETNAME``, sent
  before any command;
- a connect timeout (connecting and the handshake) and a reply timeout, and TCP keepalive probes, so
  that a connection a NAT or a load balancer dropped while idle is found out;
- reconnection: a lost connection fails the commands it carried (Redis may or may not have run them,
  so none is sent again) and the next command connects anew, asking ``locate`` for the address each
  time, which is how a Sentinel failover is followed. A ``READONLY`` reply (the server it reached is a
  replica now) drops the connection as well;
- scripts by digest, sent whole once when Redis does not know them (``NOSCRIPT``: a restarted or
  flushed Redis).

A transport failure is an :class:`OSError` (``ConnectionError``, or ``TimeoutError`` when Redis stays
silent past a timeout); an error reply is a :class:`ReplyError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Union, cast

__all__ = ["Address", "ConnectOptions", "RedisConnection", "Reply", "ReplyError", "Script", "encode_command"]

#: A RESP2 reply: simple and bulk strings as bytes, integers, arrays, and nil as None. An error reply
#: inside an array stays a :class:`ReplyError` there; at the top it is raised.
Reply = Union[bytes, int, None, "ReplyError", list["Reply"]]
Arg = str | bytes | int
Address = tuple[str, int]

DEFAULT_TIMEOUT = 5.0  # seconds, for connecting and for each reply: redis-py's defaults
# TCP keepalive: idle seconds before the first probe, seconds between probes, probes: redis-py's defaults.
KEEPALIVE = (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
# Redis quotes the start of an unknown command's arguments in its error, which could be a stored value.
_QUOTED_ARGUMENTS = ", with args beginning with:"


class ReplyError(Exception):
    """An error reply from Redis. ``code`` is its first word: ``NOSCRIPT``, ``WRONGPASS``, ``READONLY``..."""

    def __init__(self, message: str) -> None:
        super().__init__(message.partition(_QUOTED_ARGUMENTS)[0])
        self.code = message.partition(" ")[0]


@dataclass(frozen=True)
class ConnectOptions:
    """How to open and prepare the connection; ``None`` for a timeout means none."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    tls: Callable[[], ssl.SSLContext] | None = None  # called for each connection
    client_name: str | None = None
    connect_timeout: float | None = DEFAULT_TIMEOUT
    reply_timeout: float | None = DEFAULT_TIMEOUT
    keepalive: bool = True

    def handshake(self) -> list[list[Arg]]:
        """The commands that prepare a fresh connection, in order."""
        commands: list[list[Arg]] = []
        if self.password is not None:
            commands.append(
                ["AUTH", self.username, self.password] if self.username else ["AUTH", self.password]
            )
        if self.db:
            commands.append(["SELECT", self.db])
        if self.client_name:
            commands.append(["CLIENT", "SETNAME", self.client_name])
        return commands


def encode_command(args: Sequence[Arg]) -> bytes:
    """A command as RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else b"%d" % arg if isinstance(arg, int) else arg
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more data."""


def parse_reply(data: bytes | bytearray, pos: int) -> tuple[Reply, int]:
    """The reply that starts at ``pos`` and the position after it; :class:`_Incomplete` when cut short,
    ``ValueError`` when it is not RESP2."""
    end = data.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line, pos = data[pos], data[pos + 1 : end], end + 2
    if kind == 0x24:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, pos
        if len(data) < pos + size + 2:
            raise _Incomplete
        return bytes(data[pos : pos + size]), pos + size + 2
    if kind == 0x3A:  # : integer
        return int(line), pos
    if kind == 0x2B:  # + simple string
        return bytes(line), pos
    if kind == 0x2D:  # - error
        return ReplyError(bytes(line).decode(errors="replace")), pos
    if kind == 0x2A:  # * array
        count = int(line)
        if count < 0:
            return None, pos
        items: list[Reply] = []
        for _ in range(count):
            item, pos = parse_reply(data, pos)
            items.append(item)
        return items, pos
    raise ValueError(f"a reply starting with {bytes([kind])!r}")


class _Pipeline(asyncio.Protocol):
    """One open connection: writes commands in batches and hands replies out in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reply_timeout: float | None) -> None:
        self._loop = loop
        self._reply_timeout = reply_timeout
        self._transport: asyncio.Transport | None = None
        self._outgoing: list[bytes] = []
        self._waiting: deque[tuple[asyncio.Future[Reply], float]] = deque()  # with the time each was sent
        self._buffer = b""
        self._watchdog: asyncio.TimerHandle | None = None
        self.failure: OSError | None = None  # why the connection is gone, once it is
        self.gone: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def send(self, payload: bytes) -> asyncio.Future[Reply]:
        if self.failure is not None:
            raise _again(self.failure)
        future: asyncio.Future[Reply] = self._loop.create_future()
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.append(payload)
        self._waiting.append((future, self._loop.time()))
        if self._watchdog is None and self._reply_timeout is not None:
            self._watchdog = self._loop.call_later(self._reply_timeout, self._check_replies)
        return future

    def _flush(self) -> None:
        if self.failure is None and self._transport is not None:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def data_received(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
        pos, waiting = 0, self._waiting
        try:
            while pos < len(data):
                reply, pos = parse_reply(data, pos)
                future = waiting.popleft()[0]
                if future.done():  # its caller was cancelled; the reply is still Redis's answer to it
                    continue
                if isinstance(reply, ReplyError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except _Incomplete:
            pass
        except (ValueError, IndexError):  # not RESP, or a reply nobody asked for: the stream is lost
            self.abort(ConnectionError("Redis sent a reply that is not RESP2 or that no command asked for"))
            return
        self._buffer = data[pos:]

    def _check_replies(self) -> None:
        self._watchdog = None
        if self.failure is not None or not self._waiting or self._reply_timeout is None:
            return
        late = self._loop.time() - self._waiting[0][1] - self._reply_timeout
        if late >= 0:
            self.abort(TimeoutError(f"Redis did not answer within {self._reply_timeout:g} s"))
        else:
            self._watchdog = self._loop.call_later(-late, self._check_replies)

    def abort(self, failure: OSError) -> None:
        """Give up the connection: every command waiting on it fails with ``failure``."""
        self._end(failure, graceful=False)

    def close(self) -> None:
        self._end(ConnectionError("the Redis connection was closed"), graceful=True)

    def _end(self, failure: OSError, *, graceful: bool) -> None:
        self._fail(failure)
        if self._transport is None:
            self._gone()
        elif graceful:
            self._transport.close()
        else:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the connection to Redis was lost{f': {exc}' if exc else ''}"))
        self._gone()

    def _gone(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    def _fail(self, failure: OSError) -> None:
        if self.failure is None:
            self.failure = failure
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiting:
            future = self._waiting.popleft()[0]
            if not future.done():
                future.set_exception(_again(self.failure))


def _keep_alive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in KEEPALIVE:
        if hasattr(socket, name):  # Linux has all three; other systems name them differently or lack them
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _again(failure: OSError) -> OSError:
    """A fresh exception like ``failure``: each caller gets its own, not one shared traceback."""
    return type(failure)(*failure.args)


@dataclass(frozen=True)
class Script:
    """A Lua script, run by its SHA-1 digest once Redis knows it."""

    source: str
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "digest", hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        )


class RedisConnection:
    """Commands over one pipelined connection, opened on first use and again after a loss.

    ``locate`` gives the address to connect to (called for each connection: a fixed one, or the master
    a Sentinel names now).
    """

    def __init__(self, locate: Callable[[], Awaitable[Address]], options: ConnectOptions) -> None:
        self.options = options
        self._locate = locate
        self._pipeline: _Pipeline | None = None
        self._connecting: asyncio.Task[_Pipeline] | None = None
        self._closed = False

    async def call(self, *args: Arg) -> Reply:
        """Send one command and return its reply; an error reply is raised as :class:`ReplyError`."""
        pipeline = self._pipeline
        if pipeline is None or pipeline.failure is not None:
            pipeline = await self._connected()
        try:
            return await pipeline.send(encode_command(args))
        except ReplyError as error:
            if error.code == "READONLY":  # a failover demoted this server: find the master again
                pipeline.abort(ConnectionError(f"Redis answered as a replica: {error}"))
            raise

    async def run_script(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg] = ()) -> Reply:
        """``EVALSHA``, or ``EVAL`` with the whole source when Redis does not know the script (which also
        makes Redis keep it for the next ``EVALSHA``)."""
        try:
            return await self.call("EVALSHA", script.digest, len(keys), *keys, *args)
        except ReplyError as error:
            if error.code != "NOSCRIPT":
                raise
        return await self.call("EVAL", script.source, len(keys), *keys, *args)

    async def _connected(self) -> _Pipeline:
        if self._closed:
            raise ConnectionError("the Redis connection was closed")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connect_done)
        try:
            # Shielded: a caller that is cancelled must not cancel the connection the others wait for.
            return await asyncio.shield(self._connecting)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed and current is not None and not current.cancelling():
                # close() cancelled the connect, not this caller's task: it is a failed command.
                raise ConnectionError("the Redis connection was closed") from None
            raise

    def _connect_done(self, task: asyncio.Task[_Pipeline]) -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._pipeline = task.result()

    async def _connect(self) -> _Pipeline:
        options, loop = self.options, asyncio.get_running_loop()
        # Not within the connect timeout: finding a Sentinel's master asks the sentinels one after
        # another, each with its own timeout, and a mute one must not use up the next one's time.
        host, port = await self._locate()
        try:
            async with asyncio.timeout(options.connect_timeout) as budget:
                transport, pipeline = await loop.create_connection(
                    lambda: _Pipeline(loop, options.reply_timeout),
                    host,
                    port,
                    ssl=options.tls() if options.tls is not None else None,
                )
                try:
                    if options.keepalive:
                        _keep_alive(transport.get_extra_info("socket"))
                    for command in options.handshake():
                        await pipeline.send(encode_command(command))
                except BaseException:
                    pipeline.abort(ConnectionError("the Redis handshake failed"))
                    raise
        except TimeoutError:
            if not budget.expired():
                raise  # a reply of the handshake came too late: the reply timeout's own message
            raise TimeoutError(
                f"could not connect to Redis at {host}:{port} within {options.connect_timeout} s"
            ) from None
        except OSError as error:
            raise ConnectionError(f"could not connect to Redis at {host}:{port}: {error}") from error
        return pipeline

    async def close(self) -> None:
        """Close the connection; commands still waiting fail, and later calls too."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self._pipeline is not None:
            self._pipeline.close()
            # A TLS close waits for the server's answer; a silent server does not hold up a shutdown.
            await asyncio.wait([self._pipeline.gone], timeout=self.options.connect_timeout)
