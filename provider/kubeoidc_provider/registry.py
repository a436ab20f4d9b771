"""The provider's client registry: client ID → registration and secret hashes, in memory.

The registry is fed plain dicts — the JSON of OIDCClient and Secret objects — by the watcher (from the
Kubernetes API), by the dev mode (from manifests on disk) or by tests. It never talks to the API itself,
so the request path never waits on the cluster.

The credentials come from the OIDCClient's ``status.credentials``, which the operator publishes (the
client ID and the SHA-256 of the secret: the provider reads no Secret in a cluster), or, when nothing is
published there, from the client's Secret if one is fed in (the dev mode). A client is served only when
all of this holds (a Secret that merely carries the manager label, or a copied client ID, registers
nothing):

- exactly one OIDCClient claims the client ID in ``status.clientID``, or exactly one of its claimants
  has credentials published (the operator's choice: the older claim); else neither is served;
- published credentials for that client ID in its status, or else the Secret named by that
  OIDCClient's ``status.secretName``, in its namespace, carries the manager label
  and is controller-owned (``ownerReferences[].controller``) by an OIDCClient of our API version with that
  OIDCClient's name and uid (a recreated OIDCClient of the same name does not inherit the old Secret);
- the Secret's ``client_id`` equals the claimed client ID;
- a confidential client's Secret holds a ``client_secret`` (only its SHA-256 is kept); a public client,
  one that its ServiceAccounts' tokens authenticate (``spec.serviceAccounts``) and one that signs its
  assertions with its own key (``private_key_jwt``) keep no secret at all (a ``client_secret`` left in
  such a Secret is never accepted).

During a rotation grace period the Secret also carries the previous secret's SHA-256 and its expiry
(annotations from the contract); that hash is accepted until then. Without a grace period the previous
secret is refused as soon as the Secret's update is fed in.

Concurrency: one writer lock serialises the feed (the watcher's threads); each event recomputes only the
client IDs it touches, and a re-list rebuilds the served map and swaps it in whole. Readers never lock:
``get`` is a single dict lookup, atomic under the interpreter, and each entry is an immutable ``Client``
replaced as a whole — a request holding the old entry finishes with it, the next one sees the new one.

Memory: about 0.63 KiB per client as a cluster feeds them (10,000 clients: ~6 MiB; 0.75 KiB with a
Secret fed for each), mostly the strings themselves (client ID, name, uid, redirect URIs, the page
texts); only digests are kept of the secrets, and nothing of the objects fed in beyond the fields used.
Clients configured alike share one ``ClientProfile``; the credentials published in a status are held by
the served client alone (``Registration``), and a Secret's name that is its OIDCClient's name and a
suffix as one ``NameSuffix`` shared by all so named; the feed's indexes are dicts by namespace, then
name, so no key tuple is kept per object, and a Secret's record reuses its OIDCClient's strings. A list
is best fed as
``parse_oidcclient`` records made page by page (``replace_registrations``): 10,000 objects as listed,
held at once, would leave the process some 70 MiB larger for good.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import replace

from kubeoidc_provider.registration import (
    Client,
    ClientProfile,
    Credentials,
    KubeObject,
    NameSuffix,
    Registration,
    metadata,
    namespace_name,
    parse_oidcclient,
    parse_secret,
)

logger = logging.getLogger(__name__)

#: The OIDCClients claiming one client ID: one (the rule), or several (then none is served).
_Claim = Registration | tuple[Registration, ...]


class ClientRegistry:
    """Client ID → ``Client``, fed with OIDCClient and Secret objects as dicts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = False
        # Served clients: the only structure the request path reads.
        self._clients: dict[str, Client] = {}
        # Feed-side indexes, touched only under the lock. By namespace, then name: no (namespace, name)
        # tuple per object.
        self._registrations: dict[str, dict[str, Registration]] = {}  # OIDCClients
        self._claims: dict[str, _Claim] = {}  # client ID → the OIDCClients claiming it
        self._credentials: dict[str, dict[str, Credentials]] = {}  # Secrets
        # One instance of each Secret name suffix (``NameSuffix``), for as long as a registration holds it.
        self._suffixes: weakref.WeakValueDictionary[str, NameSuffix] = weakref.WeakValueDictionary()
        # One instance of each distinct profile, for as long as a client holds it.
        self._profiles: weakref.WeakValueDictionary[tuple[object, ...], ClientProfile] = (
            weakref.WeakValueDictionary()
        )
        self._profiles_lock = threading.Lock()
        #: The algorithms the provider can sign with (``KeySet.signing_algs``); None: not checked. A
        #: client naming another one is not served (build_provider sets it from the key set).
        self.signing_algs: frozenset[str] | None = None

    # -- the request path -------------------------------------------------------------------------

    def get(self, client_id: str) -> Client | None:
        """The served client with this ID, or None."""
        return self._clients.get(client_id)

    def __len__(self) -> int:
        return len(self._clients)

    def clients(self) -> list[Client]:
        """A snapshot of every served client."""
        return list(self._clients.values())

    @property
    def ready(self) -> bool:
        """True once the feed has delivered a complete first listing (see ``mark_ready``)."""
        return self._ready

    def mark_ready(self) -> None:
        self._ready = True

    # -- the feed: OIDCClients --------------------------------------------------------------------

    def upsert_oidcclient(self, obj: KubeObject) -> None:
        """An OIDCClient was added or modified (a new uid under a known name replaces the old object)."""
        registration = self.parse_oidcclient(obj)
        if registration is None:
            return
        with self._lock:
            affected: set[str] = set()
            self._forget_registration(registration.namespace, registration.name, affected)
            self._remember_registration(registration, affected)
            self._recompute(affected)

    def delete_oidcclient(self, obj: KubeObject) -> None:
        """An OIDCClient was deleted."""
        namespace, name = namespace_name(obj)
        uid = metadata(obj).get("uid")
        with self._lock:
            known = self._registrations.get(namespace, {}).get(name)
            if known is None or (uid and uid != known.uid):
                return  # a late deletion of an older object of the same name
            affected: set[str] = set()
            self._forget_registration(namespace, name, affected)
            self._recompute(affected)

    # -- the feed: Secrets ------------------------------------------------------------------------

    def upsert_secret(self, obj: KubeObject) -> None:
        """A Secret was added or modified. A Secret that is not eligible is treated as absent."""
        namespace, name = namespace_name(obj)
        credentials = parse_secret(obj)
        with self._lock:
            previous = self._pop_credentials(namespace, name)
            if credentials is not None:
                self._remember_credentials(namespace, name, credentials)
            self._recompute(self._owners_client_ids(namespace, previous, credentials))

    def delete_secret(self, obj: KubeObject) -> None:
        """A Secret was deleted (or stopped matching the manager label)."""
        namespace, name = namespace_name(obj)
        with self._lock:
            previous = self._pop_credentials(namespace, name)
            self._recompute(self._owners_client_ids(namespace, previous))

    # -- the feed: re-lists -----------------------------------------------------------------------

    def replace_all(
        self,
        oidcclients: Iterable[KubeObject] | None,
        secrets: Iterable[KubeObject] | None,
        namespace: str | None = None,
    ) -> None:
        """Replace the known objects after a (re-)list; objects missing from a list are dropped.

        ``None`` keeps that kind as it is (a watch re-lists one kind at a time); ``namespace``
        limits the replacement to one namespace (a per-namespace watch); ``None`` means all.
        """
        registrations = None if oidcclients is None else [self.parse_oidcclient(o) for o in oidcclients]
        credentials = None if secrets is None else [(namespace_name(s), parse_secret(s)) for s in secrets]
        self._replace(registrations, credentials, namespace)

    def parse_oidcclient(self, obj: KubeObject) -> Registration | None:
        """What the registry keeps of an OIDCClient (None: nothing): a list can keep this of each object
        as its pages come, instead of the objects (see ``replace_registrations``)."""
        return parse_oidcclient(obj, self._share)

    def replace_registrations(
        self, registrations: Iterable[Registration | None], namespace: str | None = None
    ) -> None:
        """``replace_all`` of the OIDCClients alone, from what ``parse_oidcclient`` returned of them."""
        self._replace(list(registrations), None, namespace)

    def _replace(
        self,
        registrations: list[Registration | None] | None,
        credentials: list[tuple[tuple[str, str], Credentials | None]] | None,
        namespace: str | None,
    ) -> None:
        with self._lock:
            if registrations is not None:
                for known in list(self._all_registrations(namespace)):
                    self._forget_registration(known.namespace, known.name, set())
                for new in registrations:
                    if new is not None and (namespace is None or new.namespace == namespace):
                        self._forget_registration(new.namespace, new.name, set())
                        self._remember_registration(new, set())
            if credentials is not None:
                for known_namespace in [n for n in self._credentials if namespace is None or n == namespace]:
                    del self._credentials[known_namespace]
                for (secret_namespace, name), cred in credentials:
                    if cred is not None and (namespace is None or secret_namespace == namespace):
                        self._pop_credentials(secret_namespace, name)
                        self._remember_credentials(secret_namespace, name, cred)
            # A re-list is rare: rebuild the whole served map and swap it in at once.
            rebuilt: dict[str, Client] = {}
            for client_id in self._claims:
                client = self._compute(client_id)
                if client is not None:
                    rebuilt[client_id] = client
            self._clients = rebuilt

    # -- internals (called under the lock) --------------------------------------------------------

    def _all_registrations(self, namespace: str | None) -> Iterator[Registration]:
        for known_namespace, by_name in self._registrations.items():
            if namespace is None or known_namespace == namespace:
                yield from by_name.values()

    def _remember_registration(self, registration: Registration, affected: set[str]) -> None:
        self._registrations.setdefault(registration.namespace, {})[registration.name] = registration
        text = registration.secret_name_suffix
        if text is not None:
            suffix = self._suffixes.get(text)
            if suffix is None:
                self._suffixes[text] = suffix = NameSuffix(text)
            registration.hold_secret_name_as(suffix)
        client_id = registration.client_id
        if client_id is not None:
            claim = self._claims.get(client_id)
            if claim is None:
                self._claims[client_id] = registration
            else:
                self._claims[client_id] = (*_claimants(claim), registration)
            affected.add(client_id)

    def _forget_registration(self, namespace: str, name: str, affected: set[str]) -> None:
        by_name = self._registrations.get(namespace)
        registration = by_name.pop(name, None) if by_name is not None else None
        if by_name is not None and not by_name:
            del self._registrations[namespace]
        if registration is None or registration.client_id is None:
            return
        claimants = _claimants(self._claims.get(registration.client_id))
        others = tuple(r for r in claimants if r is not registration)
        if len(others) > 1:
            self._claims[registration.client_id] = others
        elif others:
            self._claims[registration.client_id] = others[0]
        else:
            self._claims.pop(registration.client_id, None)
        affected.add(registration.client_id)

    def _remember_credentials(self, namespace: str, name: str, credentials: Credentials) -> None:
        owner = self._registrations.get(namespace, {}).get(credentials.owner_name)
        if owner is not None:
            # The Secret repeats what its OIDCClient holds: keep one string of each, not two.
            credentials = _sharing_strings(credentials, owner)
            if owner.secret_name == name:
                name = owner.secret_name
        self._credentials.setdefault(namespace, {})[name] = credentials

    def _pop_credentials(self, namespace: str, name: str) -> Credentials | None:
        by_name = self._credentials.get(namespace)
        if by_name is None:
            return None
        credentials = by_name.pop(name, None)
        if not by_name:
            del self._credentials[namespace]
        return credentials

    def _owners_client_ids(self, namespace: str, *credentials: Credentials | None) -> set[str]:
        """Client IDs whose service may change with these credentials: those of their controllers."""
        client_ids: set[str] = set()
        registrations = self._registrations.get(namespace, {})
        for cred in credentials:
            if cred is None:
                continue
            owner = registrations.get(cred.owner_name)
            if owner is not None and owner.client_id is not None:
                client_ids.add(owner.client_id)
        return client_ids

    def _recompute(self, client_ids: Iterable[str]) -> None:
        for client_id in client_ids:
            client = self._compute(client_id)
            if client is None:
                self._clients.pop(client_id, None)
            else:
                self._clients[client_id] = client

    def set_signing_algs(self, algs: Iterable[str]) -> None:
        """Serve only clients whose named algorithms are among ``algs`` (what the key set signs with),
        now and at each later change: called again when the signing keys change."""
        with self._lock:
            self.signing_algs = frozenset(algs)
            self._recompute(list(self._claims))

    def _unsignable(self, client: Client) -> frozenset[str]:
        """The algorithms the client names that the provider cannot sign with."""
        if self.signing_algs is None:
            return frozenset()
        return client.signing_algs - self.signing_algs

    def _compute(self, client_id: str) -> Client | None:
        """The join rule: the client to serve under this ID, or None."""
        claimants = _claimants(self._claims.get(client_id))
        if not claimants:
            return None
        published = [r for r in claimants if r.published is not None]
        if len(claimants) > 1 and len(published) == 1:
            # The operator publishes credentials for the claimant it let keep the ID (the older
            # claim) and withdraws them from the others: follow its decision.
            claimants = (published[0],)
        if len(claimants) > 1:
            names = sorted(f"{r.namespace}/{r.name}" for r in claimants)
            logger.warning(
                "Client ID %s is claimed by %d OIDCClients (%s); none of them is served",
                client_id,
                len(names),
                ", ".join(names),
            )
            return None
        registration = claimants[0]
        if registration.client is None or registration.secret_name is None:
            return None
        unsignable = self._unsignable(registration.client)
        if unsignable:
            logger.warning(
                "OIDCClient %s/%s is not served: it asks for %s, and the provider has no signing key "
                "for it (the key set signs with %s)",
                registration.namespace,
                registration.name,
                ", ".join(sorted(unsignable)),
                ", ".join(sorted(self.signing_algs or ())),
            )
            return None
        # What the operator published in status is authoritative; a Secret fed in (the dev mode, an
        # operator that does not publish yet) counts only without it.
        credentials = registration.published or self._credentials.get(registration.namespace, {}).get(
            registration.secret_name
        )
        if credentials is None:
            return None
        if credentials.owner_uid != registration.uid or credentials.owner_name != registration.name:
            return None
        if credentials.client_id != client_id:
            return None
        client = registration.client
        if client.secretless:
            # No secret to join: a public client has none, ServiceAccount tokens or its own keys
            # authenticate the others.
            return client
        if not credentials.digests:
            logger.warning(
                "OIDCClient %s/%s is confidential but its Secret %s holds no client secret; not served",
                registration.namespace,
                registration.name,
                registration.secret_name,
            )
            return None
        if client.digests == credentials.digests and client.expiries == credentials.expiries:
            return client
        # The registration keeps the served client itself (its digests the credentials' own bytes):
        # one Client per client, not two.
        registration.client = replace(client, digests=credentials.digests, expiries=credentials.expiries)
        return registration.client

    # -- parsing (no lock needed: pure, apart from the shared-profile cache) ----------------------

    def _share(self, profile: ClientProfile) -> ClientProfile:
        """The one instance of this profile, so 10,000 clients configured alike hold one between them;
        a profile no client holds any more is dropped."""
        key = profile.key()
        with self._profiles_lock:
            shared = self._profiles.get(key)
            if shared is None:
                self._profiles[key] = shared = profile
            return shared


def _claimants(claim: _Claim | None) -> tuple[Registration, ...]:
    if claim is None:
        return ()
    return claim if isinstance(claim, tuple) else (claim,)


def _sharing_strings(credentials: Credentials, owner: Registration) -> Credentials:
    """The credentials with the owner's own string for every value equal to it."""
    return replace(
        credentials,
        owner_name=owner.name if credentials.owner_name == owner.name else credentials.owner_name,
        owner_uid=owner.uid if credentials.owner_uid == owner.uid else credentials.owner_uid,
        client_id=owner.client_id
        if owner.client_id is not None and credentials.client_id == owner.client_id
        else credentials.client_id,
    )
