"""Redis storage: state shared by several provider replicas, with Redis's own expiry.

URL forms:

- ``redis://[[username]:password@]host[:port][/db][?option=value...]`` — plain TCP.
- ``rediss://...`` — the same over TLS. The ``ssl_*`` options are redis-py's, e.g.
  ``?ssl_ca_certs=/etc/redis-ca/ca.crt``, ``ssl_certfile`` / ``ssl_keyfile`` (client certificate),
  ``ssl_cert_reqs=required|optional|none``, ``ssl_check_hostname=false``.
- ``redis+sentinel://[[username]:password@]host[:port][,host[:port]...]/service_name[/db][?option=value...]``
  — Redis Sentinel: the hosts are the sentinels (port 26379 by default), ``service_name`` the monitored
  master's name. The credentials and options apply to the master, as in ``redis://``; the sentinels'
  own credentials, if any, go in ``sentinel_username`` / ``sentinel_password``. The client asks the
  sentinels for the master and follows a failover.
- ``rediss+sentinel://...`` — the same with TLS to the sentinels and to the master (the ``ssl_*``
  options apply to both).

Every key starts with ``kubeoidc:`` (so one Redis can serve other things): an entry is a hash
``kubeoidc:e:<kind>:<key>`` with fields ``v`` (the JSON value) and ``c`` (how many times it was
consumed); a counter is ``kubeoidc:n:<kind>:<key>``. Both carry Redis TTLs.

Commands go down one pipelined connection of the store's own (:mod:`.redis_connection`): a round trip to
Redis never holds up the event loop, and the commands of concurrent requests share writes and reads.
It connects on first use, on the loop that uses it, and again after a lost connection. redis-py is
kept for what is not on the request path: parsing the URL, building the TLS context from the ``ssl_*``
options, and asking the sentinels for the master.

Besides the ``ssl_*`` options, the URL may set ``socket_timeout`` (seconds to wait for a reply, 5 by
default), ``socket_connect_timeout`` (for finding the master, connecting and authenticating, 5 by
default), ``socket_keepalive`` and ``client_name``. Any other option is refused when the store is
opened, rather than ignored: it would set something of redis-py's own connection pool, which this
store does not use (``max_connections``, ``retry_on_timeout``, ``health_check_interval``...).

``put``, ``consume`` and ``incr`` are Lua scripts, which Redis runs atomically: ``put`` replaces the
entry and sets its TTL in one step (so it never exists without one, and a replaced entry restarts
unused), ``consume`` reads the value and ``HINCRBY``s the use count in one step (never GET then DEL),
and ``incr`` sets the window's expiry in the same step as the first ``INCR``; ``uncount`` decrements
only a live, positive counter (``DECR`` keeps its TTL). Every operation is one command, so one round
trip; a script rather than a ``MULTI`` block for ``put`` because the loop then encodes one command and
parses one reply instead of five.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import redis.exceptions
from redis.asyncio.connection import RedisSSLContext
from redis.asyncio.sentinel import Sentinel
from redis.connection import parse_url

from . import Consumed, check_kind, check_ttl, dump_value, load_value, redact_url
from .redis_connection import Address, ConnectOptions, RedisConnection, Reply, Script

__all__ = ["DEFAULT_PREFIX", "RedisStorage", "connect_options", "sentinel_options"]

DEFAULT_PREFIX = "kubeoidc:"
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379

# KEYS[1]: the entry's hash; ARGV[1]: the JSON value; ARGV[2]: the TTL in seconds. DEL first, so a replaced
# entry keeps no field of the old one (its use count restarts at 0).
_PUT = Script("""
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'c', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
""")
# KEYS[1]: the entry's hash. Returns nil when absent (or expired: Redis never returns an expired key),
# else {value, uses after this call}. HINCRBY keeps the key's TTL.
_CONSUME = Script("""
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return false end
return {v, redis.call('HINCRBY', KEYS[1], 'c', 1)}
""")
# KEYS[1]: the counter; ARGV[1]: the window in seconds. A counter with no TTL (left by anything but
# this script) gets one too, so no counter ever lives forever.
_INCR = Script("""
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) == -1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return n
""")
# KEYS[1]: the counter. An absent (or expired) counter is not created: it would live without a TTL.
_UNCOUNT = Script("""
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then redis.call('DECR', KEYS[1]) end
return 0
""")


# URL options and the RedisSSLContext arguments they set.
_TLS_OPTIONS = {
    "ssl_keyfile": "keyfile",
    "ssl_certfile": "certfile",
    "ssl_password": "password",
    "ssl_cert_reqs": "cert_reqs",
    "ssl_check_hostname": "check_hostname",
    "ssl_ca_certs": "ca_certs",
    "ssl_ca_data": "ca_data",
    "ssl_ca_path": "ca_path",
    "ssl_include_verify_flags": "include_verify_flags",
    "ssl_exclude_verify_flags": "exclude_verify_flags",
    "ssl_min_version": "min_version",
    "ssl_ciphers": "ciphers",
}
# What a TLS connection checks unless the URL says otherwise: redis-py's defaults for rediss://.
_TLS_DEFAULTS: dict[str, Any] = {"cert_reqs": "required", "check_hostname": True}
_CONNECTION_OPTIONS = frozenset(
    {
        "username",
        "password",
        "db",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "client_name",
    }
)
# URL options and the ConnectOptions fields they set.
_TUNING_OPTIONS = {
    "client_name": "client_name",
    "socket_connect_timeout": "connect_timeout",
    "socket_timeout": "reply_timeout",
    "socket_keepalive": "keepalive",
}
_RESP2 = 2  # the protocol the connection speaks; a URL may say so


class RedisStorage:
    """:class:`~kubeoidc_provider.storage.Storage` in Redis, over one :class:`RedisConnection`."""

    def __init__(
        self, connection: RedisConnection, *, prefix: str = DEFAULT_PREFIX, sentinel: Sentinel | None = None
    ) -> None:
        self.connection = connection
        self._sentinel = sentinel
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX, password: str | None = None) -> RedisStorage:
        """The store at the Redis a URL names (see the module docstring), connecting on the first command.
        ``password`` is used when the URL has none (a password in the URL wins)."""
        scheme = url.partition("://")[0].lower()
        if scheme in ("redis", "rediss"):
            try:
                options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
                address: Address = (options.pop("host", "localhost"), options.pop("port", DEFAULT_PORT))
                options.pop("connection_class", None)
                connection_options = connect_options(options, tls=scheme == "rediss", password=password)
            except ValueError as e:
                raise ValueError(f"invalid Redis storage URL {redact_url(url)!r}: {e}") from None

            async def fixed() -> Address:
                return address

            return cls(RedisConnection(fixed, connection_options), prefix=prefix)
        if scheme in ("redis+sentinel", "rediss+sentinel"):
            sentinels, service, master_kwargs, sentinel_kwargs = sentinel_options(url)
            tls = bool(master_kwargs.pop("ssl", False))
            try:
                connection_options = connect_options(master_kwargs, tls=tls, password=password)
            except ValueError as e:
                raise ValueError(f"invalid Redis Sentinel URL {redact_url(url)!r}: {e}") from None
            sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)

            async def master() -> Address:
                try:
                    host, port = await sentinel.discover_master(service)
                except redis.exceptions.RedisError as e:
                    raise ConnectionError(f"no sentinel named the master of {service!r}: {e}") from e
                return str(host), int(port)

            return cls(RedisConnection(master, connection_options), prefix=prefix, sentinel=sentinel)
        raise ValueError(f"not a Redis storage URL: {redact_url(url)!r}")

    def _entry(self, kind: str, key: str) -> str:
        check_kind(kind)
        return f"{self.prefix}e:{kind}:{key}"

    def _counter(self, kind: str, key: str) -> str:
        check_kind(kind)
        return f"{self.prefix}n:{kind}:{key}"

    async def put(self, kind: str, key: str, value: Mapping[str, Any], ttl: int) -> None:
        text = dump_value(value)
        check_ttl(ttl)
        await self.connection.run_script(_PUT, [self._entry(kind, key)], [text, ttl])

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        text = await self.connection.call("HGET", self._entry(kind, key), "v")
        return None if text is None else load_value(_text(text))

    async def delete(self, kind: str, key: str) -> None:
        await self.connection.call("DEL", self._entry(kind, key), self._counter(kind, key))

    async def consume(self, kind: str, key: str) -> Consumed | None:
        found = await self.connection.run_script(_CONSUME, [self._entry(kind, key)])
        if found is None:
            return None
        if not isinstance(found, list) or len(found) != 2:
            raise _unexpected(found)
        text, uses = found
        return Consumed(load_value(_text(text)), first=_count(uses) == 1)

    async def incr(self, kind: str, key: str, ttl: int) -> int:
        check_ttl(ttl)
        return _count(await self.connection.run_script(_INCR, [self._counter(kind, key)], [ttl]))

    async def uncount(self, kind: str, key: str) -> None:
        await self.connection.run_script(_UNCOUNT, [self._counter(kind, key)])

    async def close(self) -> None:
        await self.connection.close()
        if self._sentinel is not None:
            for sentinel in self._sentinel.sentinels:
                await sentinel.aclose()


def connect_options(options: Mapping[str, Any], *, tls: bool, password: str | None = None) -> ConnectOptions:
    """The connection's settings from redis-py's parse of a URL (host and port taken out); ``password``
    when the URL has none. An option the connection would not honour is refused."""
    if options.get("protocol", _RESP2) == _RESP2:
        options = {name: value for name, value in options.items() if name != "protocol"}
    unknown = sorted(set(options) - _CONNECTION_OPTIONS - set(_TLS_OPTIONS))
    if unknown:
        raise ValueError(
            f"unsupported option {', '.join(unknown)}; the options are "
            f"{', '.join(sorted(_CONNECTION_OPTIONS - {'username', 'password', 'db'}))} and ssl_*"
        )
    username, password = options.get("username") or None, options.get("password") or password
    if username and not password:
        # Without AUTH, Redis would take the connection as its default user, not as the one named.
        raise ValueError(f"the URL names the Redis user {username!r} but no password")
    tls_arguments = {argument: options[name] for name, argument in _TLS_OPTIONS.items() if name in options}
    if tls_arguments and not tls:
        raise ValueError("ssl_* options need a rediss:// URL")
    context: Callable[[], ssl.SSLContext] | None = None
    if tls:
        arguments: dict[str, Any] = _TLS_DEFAULTS | tls_arguments

        def built() -> ssl.SSLContext:
            # For each connection (redis-py shares one context while the files are unchanged).
            return RedisSSLContext(**arguments).get()

        try:
            built()  # read the files now: a missing or bad one stops the start, not a request
        except redis.exceptions.RedisError as e:  # redis-py's word for a bad option value
            raise ValueError(str(e)) from None
        context = built
    # Only what the URL sets: ConnectOptions holds the defaults.
    tuned = {
        setting: options[name] for name, setting in _TUNING_OPTIONS.items() if options.get(name) is not None
    }
    return ConnectOptions(
        username=username, password=password, db=int(options.get("db") or 0), tls=context, **tuned
    )


def _text(reply: Reply) -> bytes:
    if not isinstance(reply, bytes):
        raise _unexpected(reply)
    return reply


def _count(reply: Reply) -> int:
    if not isinstance(reply, int):
        raise _unexpected(reply)
    return reply


def _unexpected(reply: Reply) -> TypeError:
    # The reply's type only: a value could hold what a session or code carries.
    return TypeError(f"unexpected reply from Redis: {type(reply).__name__}")


def sentinel_options(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any], dict[str, Any]]:
    """Split a ``redis+sentinel://`` URL into sentinel addresses, service name, master and sentinel kwargs.

    The master's options are parsed by redis-py's own URL parser (so every option ``redis://`` takes
    works the same here); the sentinels get the socket and TLS options, plus ``sentinel_username`` /
    ``sentinel_password``.
    """
    shown = redact_url(url)
    scheme, _, rest = url.partition("://")
    tls = scheme.lower() == "rediss+sentinel"
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    sentinels = [_host_port(part, shown) for part in hosts.split(",") if part.strip()]
    if not sentinels:
        raise ValueError(f"Redis Sentinel URL {shown!r} names no sentinel host")
    service, _, db = path.partition("/")
    service = unquote(service)
    if not service:
        raise ValueError(
            f"Redis Sentinel URL {shown!r} names no service: use redis+sentinel://host:port,host:port/service_name"
        )

    options = dict(parse_qsl(query, keep_blank_values=False))
    sentinel_auth = {
        name.removeprefix("sentinel_"): options.pop(name)
        for name in ("sentinel_username", "sentinel_password")
        if name in options
    }
    # Let redis-py parse credentials, db and typed options exactly as for redis:// (placeholder host).
    synthetic = f"{'rediss' if tls else 'redis'}://{userinfo + '@' if userinfo else ''}sentinel/{db}"
    if options:
        synthetic += "?" + urlencode(options)
    try:
        master_kwargs: dict[str, Any] = parse_url(synthetic)  # type: ignore[no-untyped-call]
    except ValueError as e:
        raise ValueError(f"invalid Redis Sentinel URL {shown!r}: {e}") from None
    for name in ("host", "port", "connection_class"):
        master_kwargs.pop(name, None)
    if tls:
        master_kwargs["ssl"] = True  # SentinelConnectionPool then uses its TLS connection class

    sentinel_kwargs = {
        name: value
        for name, value in master_kwargs.items()
        if name.startswith(("socket_", "ssl")) or name in ("retry_on_timeout", "health_check_interval")
    }
    sentinel_kwargs.update(sentinel_auth)
    return sentinels, service, master_kwargs, sentinel_kwargs


def _host_port(text: str, shown: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` of one sentinel."""
    text = text.strip()
    if text.startswith("["):
        host, _, tail = text[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    try:
        port = int(port_text) if port_text else DEFAULT_SENTINEL_PORT
    except ValueError:
        raise ValueError(f"Redis Sentinel URL {shown!r}: bad port in {text!r}") from None
    if not host or not 0 < port < 65536:
        raise ValueError(f"Redis Sentinel URL {shown!r}: bad sentinel address {text!r}")
    return unquote(host), port
