"""The one place the provider asks "who is this?": static users, LDAP sources and upstream sign-ins.

Static users are known by their ``id``. A person from an identity source is known by a subject only
that source produces (:mod:`.subjects`); what the source said about them at their last sign-in (name,
email, groups) is kept in the state store, shared by every replica, as long as a refresh token can
live. A person whose source has been removed is nobody: their tokens stop working at the next refresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import kubeoidc_contract as contract
from kubeoidc_provider.identity.catalog import SourceCatalog
from kubeoidc_provider.identity.ldap import LDAPUnavailable
from kubeoidc_provider.identity.subjects import source_of
from kubeoidc_provider.state import State
from kubeoidc_provider.users import User, UserDirectory

__all__ = ["Directory", "DirectoryUnavailable"]


class DirectoryUnavailable(Exception):
    """No password source that could know the user answered: the user sees "try again later"."""


class Directory:
    """Finds users by subject, and checks passwords against the static users and the LDAP sources."""

    def __init__(self, users: UserDirectory, sources: SourceCatalog, state: State, ttl: int) -> None:
        self.users = users
        self.sources = sources
        self.state = state
        #: How long a source user's profile is kept after their last sign-in.
        self.ttl = ttl

    def authenticate(self, username: str, password: str, allowed: Iterable[str] = ()) -> User | None:
        """Blocking (password hashes, LDAP): call it on a worker thread.

        The static users first (when the client allows ``local``), then each allowed LDAP source in
        order; the first that knows the user decides. When nobody knew the user and an LDAP source was
        down, :class:`DirectoryUnavailable`: a wrong password must not be claimed then.
        """
        allowed = tuple(allowed)
        if not allowed or contract.LOCAL_SOURCE in allowed:
            user = self.users.authenticate(username, password)
            if user is not None:
                return user
        unavailable = []
        for source in self.sources.directories(allowed or None):
            try:
                user = source.authenticate(username, password)
            except LDAPUnavailable as error:
                unavailable.append(str(error))
                continue
            if user is not None:
                return user
        if unavailable:
            raise DirectoryUnavailable("; ".join(unavailable))
        return None

    async def remember(self, user: User) -> None:
        """Keep what a source said about the user (no-op for static users, who are always known)."""
        if source_of(user.id) is not None:
            await self.state.save_identity(user.id, dataclasses.asdict(user), self.ttl)

    def find_static(self, subject: str) -> tuple[bool, User | None]:
        """``(True, user or None)`` for a subject :meth:`find` answers without the state store (a
        static user's); ``(False, None)`` for one it must look up (a person from an identity source)."""
        if source_of(subject) is None:
            return True, self.users.get(subject)
        return False, None

    async def find(self, subject: str) -> User | None:
        """The user with this subject, or ``None`` when there is none (any more)."""
        source = source_of(subject)
        if source is None:
            return self.users.get(subject)
        if source not in self.sources.names():
            return None
        value = await self.state.get_identity(subject)
        if value is None:
            return None
        pairs = {field: tuple(map(tuple, value.get(field, ()))) for field in ("address", "profile")}
        return User(**{**value, "groups": tuple(value.get("groups", ())), **pairs})
