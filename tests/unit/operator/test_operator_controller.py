"""The controller plans from an event's body only when it holds every status written by this process (else
it reads afresh), creates a new client's Secret unread, writes the Secret before status, and never acts
twice at once."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import kopf
import pytest

from kubeoidc_contract import ROTATE_ANNOTATION
from kubeoidc_operator import handlers
from kubeoidc_operator.controller import CLIENT, SECRET, Reconciler
from kubeoidc_operator.errors import Conflict, NotFound
from kubeoidc_operator.settings import OperatorSettings
from kubeoidc_operator.status import Event

Factory = Callable[..., Any]


class FakeApi:
    """An in-memory stand-in for KubeApi that records every write in order."""

    def __init__(self) -> None:
        self.clients: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.fail_status = False
        self.lock = threading.Lock()

    def get_client(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.clients:
            raise NotFound(name)
        return copy.deepcopy(self.clients[namespace, name])

    def list_clients(self, namespaces: Any = ()) -> list[dict[str, Any]]:
        return [copy.deepcopy(c) for c in self.clients.values()]

    def patch_client_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        if self.fail_status:
            raise RuntimeError("status write failed")
        self.writes.append(("status", name))
        client = self.clients[namespace, name]
        client["status"] = {**client.get("status", {}), **{k: v for k, v in status.items() if v is not None}}
        return client

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.secrets:
            raise NotFound(name)
        return copy.deepcopy(self.secrets[namespace, name])

    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.secrets.get((namespace, name)))

    def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            key = (namespace, body["metadata"]["name"])
            if key in self.secrets:
                raise Conflict("exists")
            self.writes.append(("create", key[1]))
            self.secrets[key] = copy.deepcopy(
                {**body, "metadata": {**body["metadata"], "uid": f"uid-{key[1]}"}}
            )
        return body

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("patch", name))
        secret = self.secrets[namespace, name]
        for part in ("metadata", "data"):
            for key, value in patch.get(part, {}).items():
                if isinstance(value, dict):
                    merged = {**secret[part].get(key, {}), **value}
                    secret[part][key] = {k: v for k, v in merged.items() if v is not None}
                elif value is None:
                    secret[part].pop(key, None)
                else:
                    secret[part][key] = value
        return secret

    def delete_secret(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        if self.secrets[namespace, name]["metadata"].get("uid") != uid:
            raise Conflict("uid precondition")
        self.writes.append(("delete", name))
        del self.secrets[namespace, name]


@pytest.fixture
def api(client_factory: Factory) -> FakeApi:
    fake = FakeApi()
    fake.clients["apps", "web"] = client_factory("web")
    return fake


@pytest.fixture
def settings() -> OperatorSettings:
    return OperatorSettings(issuer="https://login.example.com")


def test_a_new_client_costs_its_secret_then_its_status_and_no_event(
    api: FakeApi, settings: OperatorSettings
) -> None:
    posted: list[tuple[str, Event]] = []
    reconciler = Reconciler(
        api, settings, emit=lambda client, event: posted.append((client["metadata"]["name"], event))
    )

    outcome = reconciler.reconcile("apps", "web")

    assert outcome is not None
    assert api.writes == [("create", "web-oidc"), ("status", "web")]
    assert posted == []
    api.writes.clear()
    reconciler.reconcile("apps", "web")
    assert api.writes == []


def test_a_deleted_client_is_not_reconciled(api: FakeApi, settings: OperatorSettings) -> None:
    assert Reconciler(api, settings).reconcile("apps", "gone") is None


def test_a_failed_status_write_does_not_rotate_twice(api: FakeApi, settings: OperatorSettings) -> None:
    reconciler = Reconciler(api, settings)
    reconciler.reconcile("apps", "web")
    api.clients["apps", "web"]["metadata"]["annotations"] = {ROTATE_ANNOTATION: "r1"}
    api.fail_status = True
    with pytest.raises(RuntimeError):
        reconciler.reconcile("apps", "web")
    rotated = copy.deepcopy(api.secrets["apps", "web-oidc"]["data"])
    api.fail_status = False
    reconciler.reconcile("apps", "web")
    assert api.secrets["apps", "web-oidc"]["data"] == rotated
    assert api.clients["apps", "web"]["status"]["rotation"]["lastValue"] == "r1"


def test_a_moved_secret_is_deleted_with_a_uid_precondition(api: FakeApi, settings: OperatorSettings) -> None:
    reconciler = Reconciler(api, settings)
    reconciler.reconcile("apps", "web")
    api.clients["apps", "web"]["spec"]["secretName"] = "web-v2"
    api.writes.clear()
    reconciler.reconcile("apps", "web")
    assert api.writes == [("create", "web-v2"), ("delete", "web-oidc"), ("status", "web")]


def test_concurrent_triggers_for_one_client_create_one_secret(
    api: FakeApi, settings: OperatorSettings
) -> None:
    reconciler = Reconciler(api, settings)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reconciler.reconcile("apps", "web")
        except BaseException as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert [w for w in api.writes if w[0] == "create"] == [("create", "web-oidc")]


def test_resync_goes_on_after_one_client_fails(
    api: FakeApi, settings: OperatorSettings, client_factory: Factory
) -> None:
    api.clients["apps", "broken"] = client_factory("broken")
    working = api.create_secret

    def flaky(namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if body["metadata"]["name"] == "broken-oidc":
            raise RuntimeError("API down")
        return working(namespace, body)

    api.create_secret = flaky  # type: ignore[method-assign]
    outcomes = Reconciler(api, settings).reconcile_all()
    assert [o.client["metadata"]["name"] for o in outcomes] == ["web"]
    assert ("apps", "web-oidc") in api.secrets


def test_a_conflict_is_retried_with_the_objects_read_again_until_the_reconcile_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class ConflictingTwice:
        calls = 0

        def reconcile(self, namespace: str, name: str, log: Any, **_: Any) -> None:
            self.calls += 1
            if self.calls <= 2:
                raise Conflict("Secret apps/web-oidc: conflict")

    reconciler, waits = ConflictingTwice(), list[float]()
    caplog.set_level(logging.INFO)
    handlers._reconcile(reconciler, "apps", "web", logging.getLogger("test"), sleep=waits.append)  # type: ignore[arg-type]

    assert reconciler.calls == 3
    assert waits == [handlers.CONFLICT_RETRY] * 2
    assert "retrying with the objects read again" in caplog.text


def test_a_reconcile_that_keeps_failing_gives_up_after_its_attempts_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class AlwaysConflicting:
        def reconcile(self, namespace: str, name: str, log: Any, **_: Any) -> None:
            raise Conflict("Secret apps/web-oidc: conflict")

    waits: list[float] = []
    handlers._reconcile(AlwaysConflicting(), "apps", "web", logging.getLogger("test"), sleep=waits.append)  # type: ignore[arg-type]

    assert len(waits) == handlers.ATTEMPTS
    assert "the periodic resync tries again" in caplog.text


def test_register_adds_handlers_without_reading_the_environment(settings: OperatorSettings) -> None:
    registry = kopf.OperatorRegistry()
    reconciler = handlers.register(registry, settings, FakeApi())  # type: ignore[arg-type]
    assert reconciler.settings is settings
    assert kopf.get_default_registry() is not registry


class VersionedApi(FakeApi):
    """The fake API, whose write answers carry a new resourceVersion, as the API server's do."""

    version = 100

    def _stamped(self, answer: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        return {**answer, "metadata": {**answer["metadata"], "resourceVersion": str(self.version)}}

    def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._stamped(super().create_secret(namespace, body))

    def patch_client_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self._stamped(super().patch_client_status(namespace, name, status))


_Api = TypeVar("_Api", bound=FakeApi)


def with_web(api: _Api, client_factory: Factory) -> _Api:
    """``api`` holding one client, apps/web."""
    api.clients["apps", "web"] = client_factory("web")
    return api


def test_the_echo_of_its_own_write_needs_no_reconcile_and_any_other_version_does(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api = with_web(VersionedApi(), client_factory)
    reconciler = Reconciler(api, settings)

    reconciler.reconcile("apps", "web")

    # The Secret's creation answered 101, the status patch 102: those events are the writes' echoes.
    assert reconciler.is_echo(SECRET, "apps", "web-oidc", "101")
    assert reconciler.is_echo(CLIENT, "apps", "web", "102")
    # Each echo is recognised once; a later version (someone else's change) is reconciled.
    assert not reconciler.is_echo(CLIENT, "apps", "web", "102")
    reconciler.reconcile("apps", "web")
    assert not reconciler.is_echo(SECRET, "apps", "web-oidc", "250")


class CountingApi(VersionedApi):
    """The versioned fake API, counting reads of clients."""

    reads = 0

    def get_client(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        return super().get_client(namespace, name)


def test_an_event_that_overtook_its_writes_answer_is_still_known_as_its_echo_under_the_clients_lock(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api = with_web(CountingApi(), client_factory)
    reconciler = Reconciler(api, settings)
    # The Secret's event reached the filter before the reconcile that created it recorded the answer.
    assert not reconciler.is_echo(SECRET, "apps", "web-oidc", "101", peek=True)
    reconciler.reconcile("apps", "web")
    reads = api.reads

    # The handler asks again under the client's lock: the echo of the create (101) is left alone.
    assert reconciler.reconcile("apps", "web", unless_echo=(SECRET, "web-oidc", "101")) is None
    assert api.reads == reads
    # A version that is no write of this process's (someone edited the Secret) is reconciled.
    assert reconciler.reconcile("apps", "web", unless_echo=(SECRET, "web-oidc", "250")) is not None
    assert api.reads == reads + 1


def test_a_peek_at_another_version_keeps_the_write_for_its_echo_and_the_echo_forgets_it(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api = with_web(VersionedApi(), client_factory)
    reconciler = Reconciler(api, settings)
    reconciler.reconcile("apps", "web")

    assert not reconciler.is_echo(CLIENT, "apps", "web", "99", peek=True)
    assert reconciler.is_echo(CLIENT, "apps", "web", "102", peek=True)
    assert not reconciler.is_echo(CLIENT, "apps", "web", "102", peek=True)


@pytest.mark.parametrize(
    ("status", "version"),
    [
        ({"observedGeneration": 3}, "102"),
        ({"observedGeneration": 2}, None),
        ({}, None),
        (None, None),
    ],
    ids=["written-for-this-spec", "written-for-an-older-spec", "no-generation-seen", "no-status"],
)
def test_only_a_status_written_for_the_current_spec_can_make_an_event_an_echo(
    status: dict[str, Any] | None, version: str | None
) -> None:
    client: dict[str, Any] = {"metadata": {"name": "web", "generation": 3, "resourceVersion": "102"}}
    if status is not None:
        client["status"] = status

    assert handlers.echo_version(client) == version


def test_a_spec_change_listed_at_the_version_of_a_status_write_is_still_reconciled(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api = with_web(VersionedApi(), client_factory)
    reconciler = Reconciler(api, settings)
    reconciler.reconcile("apps", "web")
    # The status write (102) raced a spec change: the object at 102 has generation 2, its status 1.
    relisted = {
        "metadata": {"name": "web", "generation": 2, "resourceVersion": "102"},
        "status": {"observedGeneration": 1},
    }

    assert not reconciler.is_echo(CLIENT, "apps", "web", handlers.echo_version(relisted), peek=True)


class StoredVersionsApi(FakeApi):
    """The fake API keeping resourceVersions as the API server does: each write moves the object's, a
    read and a write's answer carry it; it counts the reads of clients and Secrets."""

    version = 100
    client_reads = 0
    secret_reads = 0
    creates_tried = 0

    def _next(self) -> str:
        self.version += 1
        return str(self.version)

    def add(self, client: dict[str, Any]) -> dict[str, Any]:
        """A client created by a user; returns it as its ADDED event carries it."""
        client["metadata"]["resourceVersion"] = self._next()
        self.clients[client["metadata"]["namespace"], client["metadata"]["name"]] = client
        return copy.deepcopy(client)

    def edit(
        self, name: str, *, spec: dict[str, Any] | None = None, rotate: str | None = None
    ) -> dict[str, Any]:
        """Someone else's change to apps/``name``; returns the client as that change's event carries it."""
        client = self.clients["apps", name]
        if spec is not None:
            client["spec"] = {**client["spec"], **spec}
            client["metadata"]["generation"] += 1
        if rotate is not None:
            client["metadata"].setdefault("annotations", {})[ROTATE_ANNOTATION] = rotate
        client["metadata"]["resourceVersion"] = self._next()
        return copy.deepcopy(client)

    def event_body(self, name: str) -> dict[str, Any]:
        """The client as the watch event of its current version carries it."""
        return copy.deepcopy(self.clients["apps", name])

    def get_client(self, namespace: str, name: str) -> dict[str, Any]:
        self.client_reads += 1
        return super().get_client(namespace, name)

    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.secret_reads += 1
        return super().find_secret(namespace, name)

    def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.creates_tried += 1
        super().create_secret(namespace, body)
        self.secrets[namespace, body["metadata"]["name"]]["metadata"]["resourceVersion"] = self._next()
        return copy.deepcopy(self.secrets[namespace, body["metadata"]["name"]])

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        super().patch_secret(namespace, name, patch)
        self.secrets[namespace, name]["metadata"]["resourceVersion"] = self._next()
        return copy.deepcopy(self.secrets[namespace, name])

    def patch_client_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        super().patch_client_status(namespace, name, status)
        self.clients[namespace, name]["metadata"]["resourceVersion"] = self._next()
        return copy.deepcopy(self.clients[namespace, name])


def ready_reason(client: dict[str, Any]) -> tuple[str, str]:
    ready = next(c for c in client["status"]["conditions"] if c["type"] == "Ready")
    return ready["status"], ready["reason"]


def test_a_new_clients_event_is_planned_from_its_body_and_costs_two_requests_its_secret_and_status(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api = StoredVersionsApi()
    added = api.add(client_factory("web"))

    Reconciler(api, settings).reconcile("apps", "web", body=added)

    assert (api.client_reads, api.secret_reads) == (0, 0)
    assert api.writes == [("create", "web-oidc"), ("status", "web")]
    assert ready_reason(api.clients["apps", "web"]) == ("True", "Reconciled")


def test_a_client_recording_no_secret_meets_a_foreign_one_on_create_and_leaves_it_untouched(
    client_factory: Factory, settings: OperatorSettings, unowned_secret: Factory
) -> None:
    api = StoredVersionsApi()
    api.secrets["apps", "web-oidc"] = unowned_secret("web-oidc")
    added = api.add(client_factory("web"))

    Reconciler(api, settings).reconcile("apps", "web", body=added)

    assert api.secrets["apps", "web-oidc"] == unowned_secret("web-oidc")
    assert api.writes == [("status", "web")]
    assert ready_reason(api.clients["apps", "web"]) == ("False", "SecretConflict")


def test_a_client_blocked_by_a_foreign_secret_reads_it_again_rather_than_trying_to_create_it_again(
    client_factory: Factory, settings: OperatorSettings, unowned_secret: Factory
) -> None:
    api = StoredVersionsApi()
    api.secrets["apps", "web-oidc"] = unowned_secret("web-oidc")
    reconciler = Reconciler(api, settings)
    reconciler.reconcile("apps", "web", body=api.add(client_factory("web")))
    assert api.creates_tried == 1  # refused: 409

    reconciler.reconcile("apps", "web")  # the periodic resync
    reconciler.reconcile("apps", "web", body=api.edit("web"))  # someone's change

    assert api.creates_tried == 1
    assert api.secrets["apps", "web-oidc"] == unowned_secret("web-oidc")
    assert ready_reason(api.clients["apps", "web"]) == ("False", "SecretConflict")


def test_a_client_whose_status_was_lost_reads_its_own_secret_back_on_create_and_keeps_its_credentials(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api = StoredVersionsApi()
    reconciler = Reconciler(api, settings)
    reconciler.reconcile("apps", "web", body=api.add(client_factory("web")))
    kept = copy.deepcopy(api.secrets["apps", "web-oidc"]["data"])
    held = api.clients["apps", "web"]["status"]["clientID"]
    # The Secret of this client is there, its status is gone (restored from a backup without it).
    del api.clients["apps", "web"]["status"]
    api.writes.clear()
    reconciler.seen("apps", "web", None, deleted=True)

    reconciler.reconcile("apps", "web", body=api.edit("web"))

    assert api.secrets["apps", "web-oidc"]["data"] == kept
    assert api.clients["apps", "web"]["status"]["clientID"] == held
    assert api.writes == [("status", "web")]


def test_an_event_older_than_the_operators_own_status_write_is_planned_from_a_fresh_read(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api = StoredVersionsApi()
    reconciler = Reconciler(api, settings)
    added = api.add(client_factory("web"))
    # A spec change queued behind the client's creation: its event still has no status.
    queued = api.edit("web", spec={"displayName": "Wiki"})
    reconciler.reconcile("apps", "web", body=added)
    planned_for = api.clients["apps", "web"]["status"]["observedGeneration"]

    outcome = reconciler.reconcile("apps", "web", body=queued)

    assert planned_for == 1  # the generation whose spec was planned, not the newer one
    assert api.client_reads == 1
    assert outcome is not None
    assert outcome.client["status"]["observedGeneration"] == 1  # it holds the status just written
    assert api.clients["apps", "web"]["status"]["observedGeneration"] == 2


def settled_web(client_factory: Factory, settings: OperatorSettings) -> tuple[StoredVersionsApi, Reconciler]:
    """apps/web reconciled once from its ADDED event, and the event of its status write seen: from there
    on, an event's body holds every status the reconciler wrote."""
    api = StoredVersionsApi()
    reconciler = Reconciler(api, settings)
    reconciler.reconcile("apps", "web", body=api.add(client_factory("web")))
    reconciler.seen("apps", "web", api.event_body("web")["metadata"]["resourceVersion"])
    return api, reconciler


def test_once_an_event_shows_its_own_status_write_later_events_are_planned_from_their_bodies(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api, reconciler = settled_web(client_factory, settings)

    reconciler.reconcile("apps", "web", body=api.edit("web", spec={"displayName": "Wiki"}))

    assert api.client_reads == 0
    assert api.clients["apps", "web"]["status"]["observedGeneration"] == 2


def test_a_read_after_its_own_write_is_the_version_whose_event_lets_bodies_be_used_again(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api = StoredVersionsApi()
    reconciler = Reconciler(api, settings)
    added = api.add(client_factory("web"))
    queued = api.edit("web", spec={"displayName": "Wiki"})
    reconciler.reconcile("apps", "web", body=added)  # writes status for generation 1
    reconciler.reconcile("apps", "web", body=queued)  # reads, writes status for generation 2
    echo = api.event_body("web")

    reconciler.reconcile("apps", "web", body=echo)
    reconciler.reconcile("apps", "web", body=api.edit("web", spec={"displayName": "Team wiki"}))

    assert api.client_reads == 1
    assert api.clients["apps", "web"]["status"]["observedGeneration"] == 3


def test_a_rotation_whose_events_queue_up_behind_its_own_writes_rotates_once(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api, reconciler = settled_web(client_factory, settings)
    first = api.secrets["apps", "web-oidc"]["data"]["client_secret"]
    rotate = api.edit("web", rotate="r1")
    relabel = api.edit("web")  # someone's change queued behind it, before the rotation's status

    reconciler.reconcile("apps", "web", body=rotate)
    rotated = api.secrets["apps", "web-oidc"]["data"]["client_secret"]
    reads = api.client_reads
    reconciler.reconcile("apps", "web", body=relabel)
    # Its body predates the rotation's status write: the client is read afresh, not planned from it.
    assert api.client_reads == reads + 1
    reconciler.reconcile("apps", "web", body=rotate)  # the same event delivered again
    assert api.client_reads == reads + 2

    assert rotated != first
    assert api.secrets["apps", "web-oidc"]["data"]["client_secret"] == rotated
    assert api.clients["apps", "web"]["status"]["rotation"]["lastValue"] == "r1"


def test_a_spec_change_during_the_reconcile_is_not_claimed_by_its_status_and_is_reconciled_next(
    client_factory: Factory, settings: OperatorSettings
) -> None:
    api = StoredVersionsApi()
    reconciler = Reconciler(api, settings)
    added = api.add(client_factory("web"))
    creating = api.create_secret

    def create_while_the_spec_changes(namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = creating(namespace, body)
        api.edit("web", spec={"secretTemplate": {"labels": {"team": "wiki"}}})
        return answer

    api.create_secret = create_while_the_spec_changes  # type: ignore[method-assign]
    reconciler.reconcile("apps", "web", body=added)
    api.create_secret = creating  # type: ignore[method-assign]
    written = api.event_body("web")  # the status write's event: generation 2, status for 1

    assert written["status"]["observedGeneration"] == 1
    assert handlers.echo_version(written) is None  # so it is no echo: reconciled
    reconciler.reconcile("apps", "web", body=written)
    assert api.clients["apps", "web"]["status"]["observedGeneration"] == 2
    assert api.secrets["apps", "web-oidc"]["metadata"]["labels"]["team"] == "wiki"
    assert api.client_reads == 0
