"""``kubeoidc dev``: the whole system on one machine, without a cluster.

It reads OIDCClient manifests from a folder (and IdentitySources with their Secrets: ``dev_sources``),
checks them with the CRD's own rules, reconciles them with
the operator's own reconciler into a local state folder (which stands in for the API server: status and
Secrets are JSON files there, so credentials survive a restart and rotate only through the annotation),
and serves the provider on ``http://127.0.0.1:<port>`` (``https`` with ``--tls``, from a local CA made in
the state folder; health and metrics on ``--health-port``, by default the next port) with SQLite state,
a demo user and signing keys kept in the state folder. Edits to the folder take effect within a second,
without a restart.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

import kubeoidc_contract as contract
from kubeoidc.dev_sources import DevSources
from kubeoidc.local_cluster import DEFAULT_NAMESPACE, Key, LocalCluster
from kubeoidc.local_tls import ensure_local_tls
from kubeoidc.manifest import InvalidOIDCClient, checked_oidcclient, load_manifests
from kubeoidc_contract.jwks import SIGNING_ALGS, SIGNING_KIDS
from kubeoidc_operator.controller import Reconciler
from kubeoidc_operator.objects import decode_data
from kubeoidc_operator.settings import OperatorSettings
from kubeoidc_operator.status import Event
from kubeoidc_provider.app import Background, build_provider, create_app, create_health_app
from kubeoidc_provider.identity.catalog import SourceCatalog
from kubeoidc_provider.keys import KeySet, KeySetError, generate_jwks
from kubeoidc_provider.main import serve
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import open_storage
from kubeoidc_provider.users import StaticUserDirectory, hash_password

logger = logging.getLogger(__name__)

DEMO_USERNAME = "demo"
#: How often the manifest folder is looked at for changes.
POLL_INTERVAL = 1.0

Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class ClientCard:
    """What dev mode prints about a client: enough to configure an application by hand."""

    key: Key
    display_name: str
    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]
    ready: str
    service_accounts: tuple[str, ...] = ()
    #: Where a ``private_key_jwt`` client's public keys are: "inline jwks" or its jwksURI; None otherwise.
    own_keys: str | None = None

    def lines(self) -> list[str]:
        no_secret = "(none: public client, uses PKCE)"
        if self.own_keys is not None:
            no_secret = (
                f"(none: authenticates with its own key, private_key_jwt; public keys: {self.own_keys})"
            )
        elif self.service_accounts:
            # Dev mode has no cluster to sign ServiceAccount tokens: such a client cannot sign in here.
            accounts = ", ".join(self.service_accounts)
            no_secret = f"(none: tokens of the ServiceAccount(s) {accounts} authenticate it, in a cluster)"
        return [
            f"OIDCClient {self.key[0]}/{self.key[1]} ({self.display_name}): {self.ready}",
            f"  client_id:     {self.client_id}",
            f"  client_secret: {self.client_secret or no_secret}",
            f"  redirect URIs: {', '.join(self.redirect_uris) or '(none)'}",
        ]


def _own_keys(spec: Mapping[str, Any]) -> str | None:
    """Where a ``private_key_jwt`` client's public keys are, for its card; None for any other client."""
    if spec.get("tokenEndpointAuthMethod") != contract.PRIVATE_KEY_JWT_AUTH_METHOD:
        return None
    return f"jwksURI {spec['jwksURI']}" if spec.get("jwksURI") else "inline jwks"


class ManifestFolder:
    """Keeps a LocalCluster in step with a folder of manifests, and the provider's registry with both."""

    def __init__(
        self,
        folder: Path,
        cluster: LocalCluster,
        reconciler: Reconciler,
        registry: ClientRegistry,
        say: Say,
        sources: DevSources | None = None,
    ) -> None:
        self.folder = folder
        self.cluster = cluster
        self.reconciler = reconciler
        self.registry = registry
        self.say = say
        self.sources = sources
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
        if self.sources is not None:
            self.sources.sync(self._files())
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
            tuple(spec.get("serviceAccounts", [])),
            _own_keys(spec),
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


def _add_missing_algorithms(keys_file: Path) -> None:
    """A key for each algorithm a state folder made before it had one for every algorithm lacks: the
    folder's key set then signs with every algorithm a manifest may name; its keys stay as they are."""
    try:
        document = json.loads(keys_file.read_text())
        keys = KeySet.from_jwks(document)
    except (ValueError, KeySetError):
        return  # left as it is: loading it later says what is wrong with it
    missing = [alg for alg in SIGNING_ALGS if not keys.can_sign(alg)]
    if not missing:
        return
    added = generate_jwks(missing[0], also=tuple(missing))["keys"]
    document["keys"] = [*document["keys"], *added]
    document[SIGNING_KIDS] = {**document.get(SIGNING_KIDS, {}), **{key["alg"]: key["kid"] for key in added}}
    _write_private(keys_file, json.dumps(document, indent=2))


def prepare_state(state_dir: Path) -> tuple[dict[str, Any], str]:
    """The state folder's signing keys and demo user, made on first use; returns the JWKS and password."""
    state_dir.mkdir(parents=True, exist_ok=True)
    keys_file = state_dir / "jwks.json"
    if not keys_file.exists():
        _write_private(keys_file, json.dumps(generate_jwks("RS256", also=SIGNING_ALGS), indent=2))
    else:
        _add_missing_algorithms(keys_file)
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
            "    givenName: Demo\n"
            "    familyName: User\n"
            "    locale: en\n"
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


def run_dev(
    folder: Path,
    *,
    state_dir: Path,
    port: int,
    health_port: int | None = None,
    tls: bool = False,
    say: Say = print,
) -> int:
    if not folder.is_dir():
        say(f"kubeoidc dev: {folder} is not a folder of OIDCClient manifests")
        return 2
    issuer = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    jwks, password = prepare_state(state_dir)
    tls_files = ensure_local_tls(state_dir / "tls") if tls else None
    settings = ProviderSettings(
        issuer=issuer,
        host="127.0.0.1",
        port=port,
        health_port=health_port or port + 1,
        storage_url=f"sqlite:///{(state_dir / 'state.db').resolve()}",
        tls_cert_file=tls_files.cert_file if tls_files else None,
        tls_key_file=tls_files.key_file if tls_files else None,
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
    catalog = SourceCatalog(issuer + contract.UPSTREAM_CALLBACK_PATH)
    manifests = ManifestFolder(folder, cluster, reconciler, registry, say, DevSources(catalog, say))
    say(f"kubeoidc dev: clients from {folder}/, state in {state_dir}/")
    manifests.sync_if_changed()
    say(f"demo user: {DEMO_USERNAME} / {password}")
    say(f"provider:  {issuer}/.well-known/openid-configuration")
    health = f"{'https' if tls else 'http'}://127.0.0.1:{settings.health_port}"
    say(f"health:    {health}/healthz, {health}/readyz, {health}/metrics (not on the issuer's port)")
    if tls_files is not None:
        say(f"CA:        {tls_files.ca_file.resolve()} (give it to kube-apiserver and kubeoidc login)")

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
        sources=catalog,
    )
    app = create_app(provider, background=(Background(watcher.start, stop.set),))
    serve(app, settings, health_app=create_health_app(provider))
    return 0
