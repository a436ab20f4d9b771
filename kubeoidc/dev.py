"""``kubeoidc dev``: the whole system on one machine, without a cluster.

It reads OIDCClient manifests from a folder, checks them with the CRD's own rules, reconciles them with
the operator's own reconciler into a local state folder (which stands in for the API server: status and
Secrets are JSON files there, so credentials survive a restart and rotate only through the annotation),
and serves the provider on ``http://127.0.0.1:<port>`` with SQLite state, a demo user and signing keys
kept in the state folder. Edits to the folder take effect within a second, without a restart.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

import kubeoidc_contract as contract
from kubeoidc.manifest import InvalidOIDCClient, checked_oidcclient, load_manifests
from kubeoidc_operator.controller import Reconciler
from kubeoidc_operator.errors import NotFound
from kubeoidc_operator.objects import decode_data
from kubeoidc_operator.ownership import is_owned
from kubeoidc_operator.settings import OperatorSettings
from kubeoidc_operator.status import Event
from kubeoidc_provider.app import Background, build_provider, create_app
from kubeoidc_provider.keys import KeySet, generate_jwks
from kubeoidc_provider.main import serve
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import open_storage
from kubeoidc_provider.users import StaticUserDirectory, hash_password

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "default"
DEMO_USERNAME = "demo"
#: How often the manifest folder is looked at for changes.
POLL_INTERVAL = 1.0

Key = tuple[str, str]  # (namespace, name)
Say = Callable[[str], None]


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch, as the API server applies the operator's patches."""
    result = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class LocalCluster:
    """The OIDCClients and Secrets the operator reads and writes, kept in a folder instead of a cluster.

    It answers the same calls as the operator's Kubernetes access module. OIDCClients come from the
    manifests (``apply``/``remove``); their uid, generation and status, and the Secrets, are JSON files.
    """

    def __init__(self, state_dir: Path) -> None:
        self._objects = state_dir / "objects"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._clients: dict[Key, dict[str, Any]] = {}
        self._lock = threading.RLock()

    # What the manifests say --------------------------------------------------------------------------
    def apply(self, manifest: Mapping[str, Any]) -> None:
        """Create or update an OIDCClient from its manifest, keeping its identity and status."""
        meta = manifest["metadata"]
        key = (meta.get("namespace") or DEFAULT_NAMESPACE, meta["name"])
        with self._lock:
            record = self._read("oidcclient", key) or {
                "uid": str(uuid.uuid4()),
                "generation": 0,
                "status": {},
            }
            spec_hash = hashlib.sha256(json.dumps(manifest.get("spec"), sort_keys=True).encode()).hexdigest()
            if record.get("specHash") != spec_hash:
                record.update(generation=record["generation"] + 1, specHash=spec_hash)
                self._write("oidcclient", key, record)
            obj = copy.deepcopy(dict(manifest))
            obj["metadata"] = {
                **copy.deepcopy(dict(meta)),
                "namespace": key[0],
                "uid": record["uid"],
                "generation": record["generation"],
            }
            obj["status"] = record["status"]
            self._clients[key] = obj

    def remove(self, key: Key) -> None:
        """Delete an OIDCClient, and what the garbage collector would delete with it: its Secrets."""
        with self._lock:
            obj = self._clients.pop(key, None)
            record = self._read("oidcclient", key)
            uid = (obj or {}).get("metadata", {}).get("uid") or (record or {}).get("uid")
            for secret in self._secrets(key[0]):
                if is_owned(secret, uid):
                    self._path("secret", (key[0], secret["metadata"]["name"])).unlink(missing_ok=True)
            self._path("oidcclient", key).unlink(missing_ok=True)

    def keys(self) -> set[Key]:
        with self._lock:
            return set(self._clients)

    def manifest_of(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            obj = self._clients.get(key)
            return copy.deepcopy(obj) if obj is not None else None

    def secrets(self) -> list[dict[str, Any]]:
        with self._lock:
            return [secret for namespace in self._namespaces() for secret in self._secrets(namespace)]

    # What the operator calls ---------------------------------------------------------------------------
    def get_client(self, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._clients.get((namespace, name))
            if obj is None:
                raise NotFound(f"OIDCClient {namespace}/{name}")
            return copy.deepcopy(obj)

    def list_clients(self, namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (ns, _), obj in self._clients.items()
                if not namespaces or ns in namespaces
            ]

    def patch_client_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        key = (namespace, name)
        with self._lock:
            obj = self._clients.get(key)
            record = self._read("oidcclient", key)
            if obj is None or record is None:
                raise NotFound(f"OIDCClient {namespace}/{name}")
            obj["status"] = merge_patch(obj.get("status") or {}, status)
            record["status"] = obj["status"]
            self._write("oidcclient", key, record)
            return copy.deepcopy(obj)

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        secret = self.find_secret(namespace, name)
        if secret is None:
            raise NotFound(f"Secret {namespace}/{name}")
        return secret

    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._read("secret", (namespace, name))

    def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        secret = copy.deepcopy(body)
        secret["metadata"] = {**secret.get("metadata", {}), "namespace": namespace, "uid": str(uuid.uuid4())}
        with self._lock:
            self._write("secret", (namespace, secret["metadata"]["name"]), secret)
        return secret

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            secret = self.get_secret(namespace, name)
            patched = merge_patch(secret, patch)
            patched["metadata"].pop("resourceVersion", None)
            self._write("secret", (namespace, name), patched)
            return patched

    def delete_secret(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        with self._lock:
            self.get_secret(namespace, name)
            self._path("secret", (namespace, name)).unlink(missing_ok=True)

    # Files ---------------------------------------------------------------------------------------------
    def _path(self, kind: str, key: Key) -> Path:
        return self._objects / key[0] / f"{kind}.{key[1]}.json"

    def _read(self, kind: str, key: Key) -> dict[str, Any] | None:
        path = self._path(kind, key)
        if not path.exists():
            return None
        value: dict[str, Any] = json.loads(path.read_text())
        return value

    def _write(self, kind: str, key: Key, value: Mapping[str, Any]) -> None:
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        # Secrets hold client secrets: readable by the owner only.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            json.dump(value, stream, indent=2, sort_keys=True)
        temporary.replace(path)

    def _namespaces(self) -> list[str]:
        return sorted(path.name for path in self._objects.iterdir() if path.is_dir())

    def _secrets(self, namespace: str) -> list[dict[str, Any]]:
        folder = self._objects / namespace
        return [json.loads(path.read_text()) for path in sorted(folder.glob("secret.*.json"))]


@dataclasses.dataclass(frozen=True)
class ClientCard:
    """What dev mode prints about a client: enough to configure an application by hand."""

    key: Key
    display_name: str
    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]
    ready: str

    def lines(self) -> list[str]:
        return [
            f"OIDCClient {self.key[0]}/{self.key[1]} ({self.display_name}): {self.ready}",
            f"  client_id:     {self.client_id}",
            f"  client_secret: {self.client_secret or '(none: public client, uses PKCE)'}",
            f"  redirect URIs: {', '.join(self.redirect_uris) or '(none)'}",
        ]


class ManifestFolder:
    """Keeps a LocalCluster in step with a folder of manifests, and the provider's registry with both."""

    def __init__(
        self, folder: Path, cluster: LocalCluster, reconciler: Reconciler, registry: ClientRegistry, say: Say
    ) -> None:
        self.folder = folder
        self.cluster = cluster
        self.reconciler = reconciler
        self.registry = registry
        self.say = say
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._cards: dict[Key, ClientCard] = {}
        self._problems: dict[str, str] = {}

    def sync_if_changed(self) -> bool:
        fingerprint = self._scan()
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        self.sync()
        return True

    def sync(self) -> None:
        """Apply every valid manifest, remove the clients whose manifest is gone, reconcile, serve."""
        seen: set[Key] = set()
        problems: dict[str, str] = {}
        for path in self._files():
            for manifest, problem in self._load(path):
                if problem is not None:
                    problems[f"{path.name}: {problem}"] = ""
                    continue
                assert manifest is not None
                key = (
                    manifest["metadata"].get("namespace") or DEFAULT_NAMESPACE,
                    manifest["metadata"]["name"],
                )
                if key in seen:
                    problems[
                        f"{path.name}: OIDCClient {key[0]}/{key[1]} is defined twice; the first wins"
                    ] = ""
                    continue
                seen.add(key)
                old = self.cluster.manifest_of(key)
                try:
                    checked = checked_oidcclient(manifest, old)
                except InvalidOIDCClient as error:
                    for violation in error.violations:
                        problems[f"{path.name}: OIDCClient {key[1]}: {violation}"] = ""
                    continue  # A refused update leaves the previous object in place, as on a cluster.
                self.cluster.apply(checked)
        for key in self.cluster.keys() - seen:
            self.cluster.remove(key)
            self._cards.pop(key, None)
            self.say(f"OIDCClient {key[0]}/{key[1]}: manifest removed; client deleted")
        for problem in problems:
            if problem not in self._problems:
                self.say(f"refused: {problem}")
        self._problems = problems
        for key in sorted(self.cluster.keys()):
            self.reconciler.reconcile(*key)
        self._serve()

    def _serve(self) -> None:
        clients = self.cluster.list_clients()
        secrets_ = self.cluster.secrets()
        self.registry.replace_all(clients, secrets_)
        self.registry.mark_ready()
        by_name = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in secrets_}
        for client in clients:
            card = self._card(client, by_name)
            if card is not None and self._cards.get(card.key) != card:
                self._cards[card.key] = card
                for line in card.lines():
                    self.say(line)

    @staticmethod
    def _card(
        client: Mapping[str, Any], secrets_by_name: Mapping[Key, Mapping[str, Any]]
    ) -> ClientCard | None:
        meta, spec, status = client["metadata"], client.get("spec", {}), client.get("status", {})
        key = (meta["namespace"], meta["name"])
        ready = next(
            (c for c in status.get("conditions", []) if c.get("type") == contract.READY_CONDITION), None
        )
        ready_text = f"Ready={ready['status']} ({ready['reason']})" if ready else "not reconciled"
        secret = secrets_by_name.get((key[0], status.get("secretName", "")))
        data = decode_data(secret) if secret else {}
        if not data.get(contract.CLIENT_ID_KEY):
            if ready and ready["status"] != "True":
                return ClientCard(
                    key, spec.get("displayName") or key[1], "-", None, (), f"{ready_text}: {ready['message']}"
                )
            return None
        return ClientCard(
            key,
            spec.get("displayName") or key[1],
            data[contract.CLIENT_ID_KEY],
            data.get(contract.CLIENT_SECRET_KEY),
            tuple(spec.get("redirectURIs", [])),
            ready_text,
        )

    def _files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        if not self.folder.is_dir():
            return ()
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in self._files())

    @staticmethod
    def _load(path: Path) -> Iterable[tuple[dict[str, Any] | None, str | None]]:
        try:
            documents = load_manifests(path.read_text())
        except OSError as error:
            yield None, f"cannot be read: {error.strerror}"
            return
        except (yaml.YAMLError, ValueError) as error:
            yield None, f"is not valid YAML: {error}"
            return
        for document in documents:
            if document.get("kind") != contract.KIND:
                continue  # Other kinds may sit beside OIDCClients (a Namespace, say): not ours.
            name = (
                document.get("metadata", {}).get("name")
                if isinstance(document.get("metadata"), dict)
                else None
            )
            if not isinstance(name, str) or not name:
                yield None, "an OIDCClient without metadata.name"
                continue
            yield document, None


def prepare_state(state_dir: Path) -> tuple[dict[str, Any], str]:
    """The state folder's signing keys and demo user, made on first use; returns the JWKS and password."""
    state_dir.mkdir(parents=True, exist_ok=True)
    keys_file = state_dir / "jwks.json"
    if not keys_file.exists():
        _write_private(keys_file, json.dumps(generate_jwks("RS256"), indent=2))
    password_file = state_dir / "demo-password"
    if not password_file.exists():
        _write_private(password_file, secrets.token_urlsafe(12))
    password = password_file.read_text().strip()
    users_file = state_dir / "users.yaml"
    if not users_file.exists():
        user_id = str(uuid.uuid4())
        _write_private(
            users_file,
            "# The dev mode's demo user; its password is in demo-password.\n"
            "users:\n"
            f"  - username: {DEMO_USERNAME}\n"
            f'    id: "{user_id}"\n'
            "    name: Demo User\n"
            "    email: demo@example.com\n"
            "    emailVerified: true\n"
            "    groups: [developers]\n"
            f'    passwordHash: "{hash_password(password)}"\n',
        )
    jwks: dict[str, Any] = json.loads(keys_file.read_text())
    return jwks, password


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(text if text.endswith("\n") else text + "\n")


def run_dev(folder: Path, *, state_dir: Path, port: int, say: Say = print) -> int:
    if not folder.is_dir():
        say(f"kubeoidc dev: {folder} is not a folder of OIDCClient manifests")
        return 2
    issuer = f"http://127.0.0.1:{port}"
    jwks, password = prepare_state(state_dir)
    settings = ProviderSettings(
        issuer=issuer,
        host="127.0.0.1",
        port=port,
        storage_url=f"sqlite:///{(state_dir / 'state.db').resolve()}",
    )
    registry = ClientRegistry()
    cluster = LocalCluster(state_dir)
    # The operator's own log lines repeat the Events printed below: keep its warnings only.
    logging.getLogger("kubeoidc_operator").setLevel(logging.WARNING)

    def emit(client: Mapping[str, Any], event: Event) -> None:
        meta = client.get("metadata", {})
        where = f"{meta.get('namespace')}/{meta.get('name')}"
        say(f"event {event.type} {event.reason} on {where}: {event.message}")

    reconciler = Reconciler(cluster, OperatorSettings(issuer=issuer), emit=emit)
    manifests = ManifestFolder(folder, cluster, reconciler, registry, say)
    say(f"kubeoidc dev: clients from {folder}/, state in {state_dir}/")
    manifests.sync_if_changed()
    say(f"demo user: {DEMO_USERNAME} / {password}")
    say(f"provider:  {issuer}/.well-known/openid-configuration")

    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(POLL_INTERVAL):
            try:
                manifests.sync_if_changed()
            except Exception:
                logger.exception("could not apply the manifests; retrying on the next change")

    watcher = threading.Thread(target=watch, name="manifest-folder", daemon=True)
    provider = build_provider(
        settings,
        registry=registry,
        users=StaticUserDirectory.from_file(state_dir / "users.yaml"),
        keys=KeySet.from_jwks(jwks),
        storage=open_storage(settings.storage_url),
    )
    app = create_app(provider, background=(Background(watcher.start, stop.set),))
    serve(app, settings)
    return 0
