"""Redis specifics: the URL forms (plain, TLS, Sentinel), the key layout and Redis-side TTLs.

The TLS and Sentinel cases start their own short-lived ``redis-server`` processes on free loopback
ports, with a throwaway certificate authority for TLS.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeoidc_provider.main import open_state_storage
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import Consumed, Storage, open_storage
from kubeoidc_provider.storage.redis import RedisStorage, sentinel_options
from kubeoidc_provider.storage.redis_connection import Reply, ReplyError
from support.certificates import CertificateAuthority

# --- URL parsing (no server needed) ---------------------------------------------------------------


def test_sentinel_url_names_the_sentinels_and_the_service() -> None:
    sentinels, service, master, sentinel = sentinel_options(
        "redis+sentinel://s1.example:26380,s2.example,[fd00::1]:26381/mymaster?db=2&socket_timeout=1.5"
    )
    assert sentinels == [("s1.example", 26380), ("s2.example", 26379), ("fd00::1", 26381)]
    assert service == "mymaster"
    assert master == {"db": 2, "socket_timeout": 1.5}
    assert sentinel == {"socket_timeout": 1.5}


def test_sentinel_url_takes_the_db_from_the_path_too() -> None:
    _, service, master, _ = sentinel_options("redis+sentinel://s1/mymaster/4")
    assert (service, master) == ("mymaster", {"db": 4})


def test_sentinel_url_credentials_go_to_the_master_and_sentinel_credentials_to_the_sentinels() -> None:
    _, _, master, sentinel = sentinel_options(
        "redis+sentinel://app:p%40ss@s1/mymaster?sentinel_username=watch&sentinel_password=s3cr%26t"
    )
    assert master == {"username": "app", "password": "p@ss"}
    assert sentinel == {"username": "watch", "password": "s3cr&t"}


def test_tls_sentinel_url_uses_tls_to_the_master_and_the_sentinels() -> None:
    _, _, master, sentinel = sentinel_options(
        "rediss+sentinel://s1/mymaster?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"
    )
    assert master == {"ssl": True, "ssl_ca_certs": "/ca.pem", "ssl_cert_reqs": "required"}
    assert sentinel == master


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel:///mymaster", "names no sentinel host"),
        ("redis+sentinel://s1", "names no service"),
        ("redis+sentinel://s1/", "names no service"),
        ("redis+sentinel://s1:port/mymaster", "bad port"),
        ("redis+sentinel://s1:70000/mymaster", "bad sentinel address"),
        ("redis+sentinel://s1/mymaster?db=x", "Invalid value for 'db'"),
    ],
)
def test_a_bad_sentinel_url_is_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sentinel_options(url)


def test_a_bad_sentinel_url_error_does_not_show_the_password() -> None:
    with pytest.raises(ValueError, match=r"\*\*\*@s1") as error:
        sentinel_options("redis+sentinel://app:hunter2@s1:x/mymaster")
    assert "hunter2" not in str(error.value)


async def test_rediss_url_options_reach_the_tls_connection(tmp_path: Path) -> None:
    ca, _, _ = write_tls_files(tmp_path)
    storage = open_storage(f"rediss://:pw@cache.example:6380/1?ssl_ca_certs={ca}&client_name=kubeoidc-a")
    assert isinstance(storage, RedisStorage)
    options = storage.connection.options
    assert (options.username, options.password, options.db, options.client_name) == (
        None,
        "pw",
        1,
        "kubeoidc-a",
    )
    assert options.tls is not None
    context = options.tls()
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert ((("commonName", "kubeoidc test CA"),),) in [ca["subject"] for ca in context.get_ca_certs()]
    assert await storage.connection._locate() == ("cache.example", 6380)
    await storage.close()


def test_a_tls_option_a_plain_url_cannot_honour_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ssl_\* options need a rediss:// URL"):
        open_storage("redis://cache.example/0?ssl_ca_certs=/ca.pem")


@pytest.mark.parametrize("option", ["max_connections=5", "retry_on_timeout=true", "health_check_interval=3"])
def test_an_option_of_redis_pys_own_pool_is_refused_not_ignored(option: str) -> None:
    with pytest.raises(ValueError, match=f"unsupported option {option.partition('=')[0]}"):
        open_storage(f"redis://:hunter2@cache.example/0?{option}")
    with pytest.raises(ValueError, match="unsupported option") as refused:
        open_storage(f"redis+sentinel://:hunter2@s1/mymaster?{option}")
    assert "hunter2" not in str(refused.value)


def test_timeouts_and_keepalive_come_from_the_url_and_default_to_five_seconds_and_on() -> None:
    default = open_storage("redis://cache.example/0")
    assert isinstance(default, RedisStorage)
    options = default.connection.options
    assert (options.connect_timeout, options.reply_timeout, options.keepalive) == (5, 5, True)
    tuned = open_storage(
        "redis://cache.example/0?socket_timeout=0.5&socket_connect_timeout=2&socket_keepalive=false"
    )
    assert isinstance(tuned, RedisStorage)
    options = tuned.connection.options
    assert (options.connect_timeout, options.reply_timeout, options.keepalive) == (2, 0.5, False)


def test_a_url_may_name_resp2_which_the_connection_speaks_but_not_resp3() -> None:
    assert isinstance(open_storage("redis://cache.example/0?protocol=2"), RedisStorage)
    with pytest.raises(ValueError, match="unsupported option protocol"):
        open_storage("redis://cache.example/0?protocol=3")


def test_a_user_name_without_a_password_is_refused_rather_than_connecting_as_the_default_user() -> None:
    with pytest.raises(ValueError, match="names the Redis user 'provider' but no password"):
        open_storage("redis://provider@cache.example/0")
    assert isinstance(open_storage("redis://provider@cache.example/0", redis_password="pw"), RedisStorage)


def test_a_bad_tls_option_value_is_refused_when_the_store_opens() -> None:
    with pytest.raises(ValueError, match=r"invalid Redis storage URL.*bogus"):
        open_storage("rediss://cache.example/0?ssl_cert_reqs=bogus")
    with pytest.raises(FileNotFoundError):
        open_storage("rediss://cache.example/0?ssl_ca_certs=/nonexistent/ca.pem")


async def test_tls_sentinel_url_makes_tls_connections_to_the_master(tmp_path: Path) -> None:
    ca, _, _ = write_tls_files(tmp_path)
    storage = open_storage(f"rediss+sentinel://s1/mymaster?ssl_ca_certs={ca}")
    assert isinstance(storage, RedisStorage)
    assert storage.connection.options.tls is not None
    assert storage.connection.options.tls().verify_mode == ssl.CERT_REQUIRED
    await storage.close()


# --- against the test Redis -----------------------------------------------------------------------


def ttl(reply: Reply) -> int:
    assert isinstance(reply, int)
    return reply


@pytest.mark.redis
async def test_keys_carry_the_kubeoidc_prefix_and_a_redis_ttl(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url)
    assert storage.prefix == "kubeoidc:"
    client = storage.connection
    try:
        await storage.put("code", "test-prefix-entry", {"v": 1}, ttl=30)
        await storage.incr("attempts", "test-prefix-counter", ttl=30)
        assert 0 < ttl(await client.call("TTL", "kubeoidc:e:code:test-prefix-entry")) <= 30
        assert 0 < ttl(await client.call("TTL", "kubeoidc:n:attempts:test-prefix-counter")) <= 30
    finally:
        await client.call(
            "DEL", "kubeoidc:e:code:test-prefix-entry", "kubeoidc:n:attempts:test-prefix-counter"
        )
        await storage.close()


@pytest.mark.redis
async def test_a_counter_left_without_a_ttl_gets_one_on_the_next_incr(redis_storage: RedisStorage) -> None:
    name = redis_storage.prefix + "n:attempts:k"
    await redis_storage.connection.call("SET", name, 5)
    assert await redis_storage.incr("attempts", "k", ttl=30) == 6
    assert 0 < ttl(await redis_storage.connection.call("TTL", name)) <= 30


@pytest.mark.redis
async def test_a_put_over_a_stray_hash_leaves_only_the_entry_and_a_ttl(redis_storage: RedisStorage) -> None:
    name = redis_storage.prefix + "e:code:k"
    await redis_storage.connection.call("HSET", name, "v", '{"old":1}', "c", 3, "stray", "x")
    await redis_storage.put("code", "k", {"new": 1}, ttl=30)
    assert await redis_storage.connection.call("HGETALL", name) == [b"v", b'{"new":1}', b"c", b"0"]
    assert 0 < ttl(await redis_storage.connection.call("TTL", name)) <= 30


# --- servers of our own: TLS and Sentinel ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(args: list[str], cwd: Path, ping: list[str]) -> subprocess.Popen[bytes]:
    """Start a server in the foreground and wait (bounded) until ``redis-cli`` gets PONG from it."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args[0]} exited with {proc.returncode}")
        done = subprocess.run(ping, capture_output=True, text=True, check=False)
        if done.stdout.strip() == "PONG":
            return proc
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"{args[0]} did not answer within 10 s")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def serves(storage: Storage) -> None:
    """Check that ``storage`` stores and hands out an entry, then close it."""
    try:
        await storage.put("code", "k", {"v": 1}, ttl=30)
        assert await storage.consume("code", "k") == Consumed({"v": 1}, first=True)
    finally:
        await storage.close()


def write_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    ca = CertificateAuthority("kubeoidc test CA")
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.pem)
    ca.write_server_files(paths[1], paths[2])
    return paths


@pytest.mark.redis
async def test_rediss_url_reaches_a_tls_redis_and_verifies_its_certificate(
    redis_server_binary: str, servers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    ca, cert, key = write_tls_files(tmp_path)
    port = free_port()
    tls = ["--tls", "--cacert", str(ca)]
    ping = ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *tls, "ping"]
    servers.append(
        start(
            [redis_server_binary, "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port),
             "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
             "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            tmp_path,
            ping,
        )
    )  # fmt: skip

    await serves(open_storage(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"))

    # The certificate is checked: without our CA the server is not trusted.
    untrusting = open_storage(f"rediss://127.0.0.1:{port}/0?socket_timeout=5")
    try:
        with pytest.raises(Exception, match="certificate verify failed"):
            await untrusting.get("code", "k")
    finally:
        await untrusting.close()


@pytest.mark.redis
async def test_sentinel_url_finds_the_master_through_the_sentinel(
    redis_server_binary: str, servers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    master_port, sentinel_port = free_port(), free_port()
    servers.append(
        start(
            [redis_server_binary, "--bind", "127.0.0.1", "--port", str(master_port), "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)],
            tmp_path,
            ["redis-cli", "-p", str(master_port), "ping"],
        )
    )  # fmt: skip
    config = tmp_path / "sentinel.conf"  # a sentinel rewrites its config file: it must be writable
    config.write_text(
        f"bind 127.0.0.1\nport {sentinel_port}\ndir {tmp_path}\n"
        f"sentinel monitor kubeoidc-test 127.0.0.1 {master_port} 1\n"
    )
    servers.append(
        start(
            [redis_server_binary, str(config), "--sentinel"],
            tmp_path,
            ["redis-cli", "-p", str(sentinel_port), "ping"],
        )
    )

    # A sentinel that takes connections and never answers comes first: asking it uses up its own
    # timeout, not the time the connection to the master has.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        await serves(
            open_storage(
                f"redis+sentinel://127.0.0.1:{mute.getsockname()[1]},127.0.0.1:{sentinel_port}/kubeoidc-test"
                "?db=3&socket_timeout=1&socket_connect_timeout=1"
            )
        )
    found = await asyncio.to_thread(
        subprocess.run,
        ["redis-cli", "-p", str(master_port), "-n", "3", "hget", "kubeoidc:e:code:k", "v"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == '{"v":1}'


@pytest.mark.redis
async def test_a_redis_with_a_password_refuses_the_provider_without_it_and_serves_it_with_it(
    redis_server_binary: str,
    servers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, password = free_port(), "a-bundled-redis-password"
    servers.append(
        start(
            [redis_server_binary, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password,
             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            tmp_path,
            ["redis-cli", "-p", str(port), "--no-auth-warning", "-a", password, "ping"],
        )
    )  # fmt: skip
    # As the chart configures the provider: the URL names the host, the password comes on its own.
    monkeypatch.setenv("KUBEOIDC_PROVIDER_STORAGE_URL", f"redis://127.0.0.1:{port}/0")

    without = open_state_storage(ProviderSettings(issuer="https://login.example.com"))
    try:
        with pytest.raises(ReplyError, match="NOAUTH Authentication required"):
            await without.put("code", "k", {"v": 1}, ttl=30)
    finally:
        await without.close()

    monkeypatch.setenv("KUBEOIDC_PROVIDER_REDIS_PASSWORD", password)
    settings = ProviderSettings(issuer="https://login.example.com")
    assert password not in repr(settings)
    await serves(open_state_storage(settings))


@pytest.mark.redis
async def test_an_acl_user_authenticates_with_its_name_and_password(
    redis_server_binary: str, servers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    port = free_port()
    servers.append(
        start(
            [redis_server_binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path), "--user", "default", "off",
             "--user", "provider", "on", ">s3cret", "~kubeoidc:*", "+@all"],
            tmp_path,
            ["redis-cli", "-p", str(port), "--user", "provider", "--pass", "s3cret", "--no-auth-warning",
             "ping"],
        )
    )  # fmt: skip
    await serves(open_storage(f"redis://provider:s3cret@127.0.0.1:{port}/0"))
    wrong = open_storage(f"redis://provider:wrong@127.0.0.1:{port}/0")
    try:
        with pytest.raises(ReplyError, match="WRONGPASS") as refused:
            await wrong.get("code", "k")
        assert "wrong" not in str(refused.value).replace("WRONGPASS", "")
    finally:
        await wrong.close()


@pytest.mark.redis
async def test_the_store_follows_a_sentinel_failover_to_the_new_master(
    redis_server_binary: str, servers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    master_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    plain = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    servers.append(
        start([redis_server_binary, "--port", str(master_port), *plain], tmp_path,
              ["redis-cli", "-p", str(master_port), "ping"])
    )  # fmt: skip
    servers.append(
        start([redis_server_binary, "--port", str(replica_port), "--replicaof", "127.0.0.1", str(master_port),
               *plain], tmp_path, ["redis-cli", "-p", str(replica_port), "ping"])
    )  # fmt: skip
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"bind 127.0.0.1\nport {sentinel_port}\ndir {tmp_path}\n"
        f"sentinel monitor kubeoidc-test 127.0.0.1 {master_port} 1\n"
        "sentinel down-after-milliseconds kubeoidc-test 1000\nsentinel failover-timeout kubeoidc-test 5000\n"
    )
    servers.append(
        start(
            [redis_server_binary, str(config), "--sentinel"],
            tmp_path,
            ["redis-cli", "-p", str(sentinel_port), "ping"],
        )
    )

    def cli(port: int, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    storage = open_storage(f"redis+sentinel://127.0.0.1:{sentinel_port}/kubeoidc-test")
    assert isinstance(storage, RedisStorage)
    try:
        await storage.put("code", "before", {"v": 1}, ttl=60)
        deadline = time.monotonic() + 30
        while "slave" not in cli(
            sentinel_port, "sentinel", "replicas", "kubeoidc-test"
        ):  # the sentinel found it
            assert time.monotonic() < deadline, "the sentinel never saw the replica"
            await asyncio.sleep(0.2)
        while cli(replica_port, "hget", "kubeoidc:e:code:before", "v") != '{"v":1}':
            assert time.monotonic() < deadline, "the replica never caught up"
            await asyncio.sleep(0.1)
        cli(sentinel_port, "sentinel", "failover", "kubeoidc-test")
        while cli(sentinel_port, "sentinel", "get-master-addr-by-name", "kubeoidc-test").splitlines()[
            -1
        ] != str(replica_port):
            assert time.monotonic() < deadline, "the failover did not happen"
            await asyncio.sleep(0.1)
        # The sentinel turns the old master into a replica on its next look (up to 10 s); do it now.
        cli(master_port, "replicaof", "127.0.0.1", str(replica_port))

        # The old master is a replica now: the store's next write finds the new one (a write that
        # reaches the old master first is refused with READONLY, which drops that connection).
        while (refused := await written_or_refused(storage)) is not None:
            # Redis may also close a demoted master's connections.
            assert isinstance(refused, ConnectionError) or refused.code == "READONLY"
            assert time.monotonic() < deadline, "the store kept writing to the old master"
            await asyncio.sleep(0.05)
        assert cli(replica_port, "hget", "kubeoidc:e:code:after", "v") == '{"v":2}'
        assert await storage.consume("code", "before") == Consumed({"v": 1}, first=True)
    finally:
        await storage.close()


async def written_or_refused(storage: RedisStorage) -> ReplyError | ConnectionError | None:
    try:
        await storage.put("code", "after", {"v": 2}, ttl=60)
    except (ReplyError, ConnectionError) as error:
        return error
    return None
