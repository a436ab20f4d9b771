"""Redis storage: state shared by several provider replicas, with Redis's own expiry.

URL forms:

- ``redis://[[username]:password@]host[:port][/db][?option=value...]`` — plain TCP.
- ``rediss://...`` — the same over TLS. Options are redis-py's URL options, e.g.
  ``?ssl_ca_certs=/etc/redis-ca/ca.crt``, ``ssl_certfile`` / ``ssl_keyfile`` (client certificate),
  ``ssl_cert_reqs=required|optional|none``, ``ssl_check_hostname=false``, ``socket_timeout=5``.
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

The client is redis-py's asyncio one: a round trip to Redis never holds up the event loop, and with
it the other requests. It connects on first use, on the loop that uses it.

``put``, ``consume`` and ``incr`` are Lua scripts, which Redis runs atomically: ``put`` replaces the
entry and sets its TTL in one step (so it never exists without one, and a replaced entry restarts
unused), ``consume`` reads the value and ``HINCRBY``s the use count in one step (never GET then DEL),
and ``incr`` sets the window's expiry in the same step as the first ``INCR``; ``uncount`` decrements
only a live, positive counter (``DECR`` keeps its TTL). Every operation is one round trip; a script
rather than a ``MULTI`` pipeline for ``put`` because the loop then encodes one command and parses one
reply instead of five (half the event loop's CPU per ``put`` with redis-py's asyncio client).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import redis.asyncio
from redis.asyncio.sentinel import Sentinel
from redis.connection import parse_url

from . import Consumed, check_kind, check_ttl, dump_value, load_value, redact_url

__all__ = ["DEFAULT_PREFIX", "RedisStorage", "sentinel_options"]

DEFAULT_PREFIX = "kubeoidc:"
DEFAULT_SENTINEL_PORT = 26379

# KEYS[1]: the entry's hash; ARGV[1]: the JSON value; ARGV[2]: the TTL in seconds. DEL first, so a replaced
# entry keeps no field of the old one (its use count restarts at 0).
_PUT = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'c', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
"""
# KEYS[1]: the entry's hash. Returns nil when absent (or expired: Redis never returns an expired key),
# else {value, uses after this call}. HINCRBY keeps the key's TTL.
_CONSUME = """
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return false end
return {v, redis.call('HINCRBY', KEYS[1], 'c', 1)}
"""
# KEYS[1]: the counter; ARGV[1]: the window in seconds. A counter with no TTL (left by anything but
# this script) gets one too, so no counter ever lives forever.
_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) == -1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return n
"""
# KEYS[1]: the counter. An absent (or expired) counter is not created: it would live without a TTL.
_UNCOUNT = """
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""


class RedisStorage:
    """:class:`~kubeoidc_provider.storage.Storage` in Redis; ``client`` is a ``redis.asyncio.Redis``."""

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX, sentinel: Any = None) -> None:
        self._client = client
        self._sentinel = sentinel
        self.prefix = prefix
        self._put = client.register_script(_PUT)
        self._consume = client.register_script(_CONSUME)
        self._incr = client.register_script(_INCR)
        self._uncount = client.register_script(_UNCOUNT)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX, password: str | None = None) -> RedisStorage:
        """Connect lazily (on the first command) to the Redis a URL names; see the module docstring.
        ``password`` is used when the URL has none (a password in the URL wins)."""
        scheme = url.partition("://")[0].lower()
        extra: dict[str, Any] = {"password": password} if password else {}
        if scheme in ("redis", "rediss"):
            try:
                # redis-py lets the URL's own password override this keyword.
                client = redis.asyncio.Redis.from_url(url, **extra)
            except ValueError as e:
                raise ValueError(f"invalid Redis storage URL {redact_url(url)!r}: {e}") from None
            return cls(client, prefix=prefix)
        if scheme in ("redis+sentinel", "rediss+sentinel"):
            sentinels, service, master_kwargs, sentinel_kwargs = sentinel_options(url)
            master_kwargs = {**extra, **master_kwargs}
            sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs, **master_kwargs)
            master = sentinel.master_for(service)
            return cls(master, prefix=prefix, sentinel=sentinel)
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
        await self._put(keys=[self._entry(kind, key)], args=[text, ttl])

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        text = await self._client.hget(self._entry(kind, key), "v")
        return load_value(text) if text is not None else None

    async def delete(self, kind: str, key: str) -> None:
        await self._client.delete(self._entry(kind, key), self._counter(kind, key))

    async def consume(self, kind: str, key: str) -> Consumed | None:
        found = await self._consume(keys=[self._entry(kind, key)])
        if not found:
            return None
        text, uses = found
        return Consumed(load_value(text), first=int(uses) == 1)

    async def incr(self, kind: str, key: str, ttl: int) -> int:
        check_ttl(ttl)
        return int(await self._incr(keys=[self._counter(kind, key)], args=[ttl]))

    async def uncount(self, kind: str, key: str) -> None:
        await self._uncount(keys=[self._counter(kind, key)])

    async def close(self) -> None:
        await self._client.aclose()
        if self._sentinel is not None:
            for sentinel in self._sentinel.sentinels:
                await sentinel.aclose()


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
