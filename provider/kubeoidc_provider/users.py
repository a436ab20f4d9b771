"""The user directory: who may sign in, with which password, and the claims each user carries.

The provider reaches users only through :class:`UserDirectory`. The first implementation,
:class:`StaticUserDirectory`, reads a list of users with password hashes, as Dex's static passwords
do; the chart mounts it from a Secret (``users.yaml``)::

    users:
      - username: alice                  # what the user types; compared exactly
        id: 3f0c9a52-8d4e-4c8e-9a51-0e6f1b7d2c11   # the stable subject (sub): never reuse or change it
        name: Alice Liddell              # optional
        email: alice@example.com         # optional
        emailVerified: true              # optional, default false
        groups: [admins, developers]     # optional
        givenName: Alice                 # optional (scope profile), as the other profile fields:
        familyName: Liddell              #   middleName, nickname, profile, picture and website (URLs),
        locale: en-GB                    #   gender, birthdate (YYYY-MM-DD, or YYYY), zoneinfo
        updatedAt: 1767225600            #   (Europe/Paris), locale, updatedAt (seconds since 1970)
        phoneNumber: "+1 555 0100"       # optional (scope phone)
        phoneNumberVerified: true        # optional, default false
        address:                         # optional (scope address), OIDC Core §5.1.1 fields
          formatted: "1 Main Street, Springfield"
          street_address: 1 Main Street
          locality: Springfield
          region: IL
          postal_code: "62701"
          country: US
        passwordHash: "$argon2id$v=19$m=65536,t=3,p=4$..."   # or bcrypt "$2b$12$..."

Make a hash with ``kubeoidc hash-password`` (argon2id). Hashes are checked when the file is read,
so a typo fails at start, not at the first sign-in. A bcrypt password longer than 72 bytes never
matches (bcrypt would silently ignore the rest).

Checking a password costs tens of milliseconds by design (run :meth:`UserDirectory.authenticate` off
the event loop). An unknown username costs the same: its password is checked against a dummy hash
of the directory's most common kind and cost, so timing does not tell which usernames exist.
"""

from __future__ import annotations

import datetime
import re
import secrets
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "StaticUserDirectory",
    "User",
    "UserDirectory",
    "UserDirectoryError",
    "hash_password",
]

#: The OIDC ``sub`` is at most 255 ASCII characters (OIDC Core §2).
_MAX_SUB_LENGTH: Final = 255
#: The profile claims beyond ``name`` and ``preferred_username`` (OIDC Core §5.1), in that order.
PROFILE_CLAIMS: Final = (
    "given_name", "family_name", "middle_name", "nickname", "profile", "picture", "website", "gender",
    "birthdate", "zoneinfo", "locale", "updated_at",
)  # fmt: skip
#: Of those, the ones that hold a URL.
URL_CLAIMS: Final = frozenset({"profile", "picture", "website"})
#: The users file's field for each of them.
PROFILE_FIELDS: Final = {
    "givenName": "given_name", "familyName": "family_name", "middleName": "middle_name",
    "nickname": "nickname", "profile": "profile", "picture": "picture", "website": "website",
    "gender": "gender", "birthdate": "birthdate", "zoneinfo": "zoneinfo", "locale": "locale",
    "updatedAt": "updated_at",
}  # fmt: skip
_FIELDS: Final = (
    "username", "id", "name", "email", "emailVerified", "groups", *PROFILE_FIELDS, "phoneNumber",
    "phoneNumberVerified", "address", "passwordHash",
)  # fmt: skip
#: ``birthdate`` (OIDC Core §5.1): YYYY-MM-DD, or YYYY alone, or 0000-MM-DD when the year is withheld.
BIRTHDATE: Final = re.compile(r"\d{4}(-\d{2}-\d{2})?")
#: The members of the ``address`` claim (OIDC Core §5.1.1).
ADDRESS_FIELDS: Final = ("formatted", "street_address", "locality", "region", "postal_code", "country")
#: Which claims each standard scope releases (OIDC Core §5.4; ``groups`` is ours).
SCOPE_CLAIMS: Final[dict[str, tuple[str, ...]]] = {
    "profile": ("name", "preferred_username", *PROFILE_CLAIMS),
    "email": ("email", "email_verified"),
    "groups": ("groups",),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
}
_BCRYPT: Final = re.compile(r"\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}")
_BCRYPT_MAX_BYTES: Final = 72
_ARGON2_PREFIXES: Final = ("$argon2id$", "$argon2i$", "$argon2d$")
_HASHER: Final = argon2.PasswordHasher()


class UserDirectoryError(ValueError):
    """The users file cannot be used; the message names the user and the field."""


@dataclass(frozen=True)
class User:
    """A user as the provider sees one: identity and profile, never the password hash."""

    id: str
    username: str
    name: str | None = None
    email: str | None = None
    email_verified: bool = False
    groups: tuple[str, ...] = ()
    phone_number: str | None = None
    phone_number_verified: bool = False
    #: The ``address`` claim's members, as (name, value) pairs in ``ADDRESS_FIELDS`` order.
    address: tuple[tuple[str, str], ...] = ()
    #: The other profile claims the source has, as (claim, value) pairs in ``PROFILE_CLAIMS`` order:
    #: strings, but ``updated_at``, a number of seconds since 1970.
    profile: tuple[tuple[str, str | int], ...] = ()

    def claims(self, scopes: Iterable[str], extra: Iterable[str] = ()) -> dict[str, Any]:
        """The user's claims for the granted scopes (OIDC Core §5.4), plus the claims named in
        ``extra`` (asked for one by one with the ``claims`` parameter, §5.5); ``sub`` always.

        ``profile``: ``name`` (when set), ``preferred_username`` and the other profile claims the
        user has (``given_name``, ``family_name``, ... ``updated_at``); ``email``: ``email`` and
        ``email_verified`` (when an email is set); ``groups``: ``groups`` (a list, maybe empty);
        ``phone``: ``phone_number`` and ``phone_number_verified``; ``address``: ``address`` (when set).
        A claim the user does not have is left out, never sent empty.
        """
        wanted = {name for scope in scopes for name in SCOPE_CLAIMS.get(scope, ())} | set(extra)
        available = self.all_claims()
        return {"sub": self.id} | {name: value for name, value in available.items() if name in wanted}

    def all_claims(self) -> dict[str, Any]:
        """Every claim the directory has for this user."""
        claims: dict[str, Any] = {"sub": self.id, "preferred_username": self.username}
        if self.name is not None:
            claims["name"] = self.name
        claims.update((name, value) for name, value in self.profile)
        if self.email is not None:
            claims["email"] = self.email
            claims["email_verified"] = self.email_verified
        claims["groups"] = list(self.groups)
        if self.phone_number is not None:
            claims["phone_number"] = self.phone_number
            claims["phone_number_verified"] = self.phone_number_verified
        if self.address:
            claims["address"] = dict(self.address)
        return claims


@runtime_checkable
class UserDirectory(Protocol):
    """Where users come from: the provider needs nothing else of them."""

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password is theirs; ``None`` otherwise (unknown user or wrong password)."""

    def get(self, user_id: str) -> User | None:
        """The user with this stable id (``sub``), or ``None`` if there is none any more."""


def hash_password(password: str) -> str:
    """An argon2id hash of a password (argon2-cffi's defaults), for ``users.yaml``."""
    return _HASHER.hash(password)


class StaticUserDirectory:
    """Users from a fixed list, each with an argon2 or bcrypt password hash."""

    def __init__(self, users: Iterable[tuple[User, str]]) -> None:
        """``users``: pairs of a user and their password hash; duplicates and unknown hashes are refused."""
        self._by_username: dict[str, tuple[User, str]] = {}
        self._by_id: dict[str, User] = {}
        for user, password_hash in users:
            where = f"user {user.username!r}"
            if user.username in self._by_username:
                raise UserDirectoryError(f"{where}: the username is used by another user too")
            if user.id in self._by_id:
                raise UserDirectoryError(f"{where}: id {user.id!r} is used by another user too")
            _check_hash(password_hash, where)
            self._by_username[user.username] = (user, password_hash)
            self._by_id[user.id] = user
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "users.yaml") -> StaticUserDirectory:
        """Read the YAML format of the module docstring; errors name ``source`` and the user."""
        import yaml  # here, not at start: a provider without a users file never loads PyYAML

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UserDirectoryError(f"{source}: not valid YAML: {e}") from None
        if not isinstance(doc, Mapping) or not isinstance(doc.get("users"), list):
            raise UserDirectoryError(f"{source}: expected a mapping with a 'users' list (users: [...])")
        extra = set(doc) - {"users"}
        if extra:
            raise UserDirectoryError(
                f"{source}: unknown top-level keys: {', '.join(sorted(map(str, extra)))}"
            )
        entries = [_parse_user(entry, index, source) for index, entry in enumerate(doc["users"])]
        try:
            return cls(entries)
        except UserDirectoryError as e:
            raise UserDirectoryError(f"{source}: {e}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> StaticUserDirectory:
        """Read a ``users.yaml`` file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise UserDirectoryError(f"cannot read the users file {str(path)!r}: {e.strerror}") from None
        return cls.from_yaml(text, source=str(path))

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[User]:
        """The users, in the order given."""
        return iter(self._by_id.values())

    def authenticate(self, username: str, password: str) -> User | None:
        found = self._by_username.get(username)
        if found is None:
            _verify(self._dummy(), password)  # same cost as a real check; the result does not matter
            return None
        user, password_hash = found
        return user if _verify(password_hash, password) else None

    def get(self, user_id: str) -> User | None:
        return self._by_id.get(user_id)

    def _dummy(self) -> str:
        """A hash of a random password, of the kind and cost most users' hashes have (made once)."""
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = _hash_like(
                    [password_hash for _, password_hash in self._by_username.values()]
                )
            return self._dummy_hash


def _parse_user(entry: Any, index: int, source: str) -> tuple[User, str]:
    where = f"{source}: users[{index}]"
    if not isinstance(entry, Mapping):
        raise UserDirectoryError(f"{where}: expected a mapping with username, id and passwordHash")
    username = entry.get("username")
    if isinstance(username, str) and username:
        where = f"{where} ({username!r})"
    unknown = set(entry) - set(_FIELDS)
    if unknown:
        raise UserDirectoryError(
            f"{where}: unknown fields {', '.join(sorted(map(str, unknown)))}; known: {', '.join(_FIELDS)}"
        )

    username, user_id = _text(entry, "username", where), _text(entry, "id", where)
    password_hash = _text(entry, "passwordHash", where)
    if len(user_id) > _MAX_SUB_LENGTH or not user_id.isascii():
        raise UserDirectoryError(
            f"{where}: id must be at most {_MAX_SUB_LENGTH} ASCII characters (it is the sub)"
        )
    if "|" in user_id:
        # Identity sources' subjects are "<source>|<hash>": a static id without "|" never equals one.
        raise UserDirectoryError(f"{where}: id must not contain '|' (kept for identity sources' subjects)")
    email_verified = entry.get("emailVerified", False)
    if not isinstance(email_verified, bool):
        raise UserDirectoryError(f"{where}: emailVerified must be true or false")
    groups = entry.get("groups", [])
    if groups is None:
        groups = []
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise UserDirectoryError(f"{where}: groups must be a list of non-empty strings")
    phone_verified = entry.get("phoneNumberVerified", False)
    if not isinstance(phone_verified, bool):
        raise UserDirectoryError(f"{where}: phoneNumberVerified must be true or false")
    _check_hash(password_hash, where)
    user = User(
        id=user_id,
        username=username,
        name=_text(entry, "name", where) if entry.get("name") is not None else None,
        email=_text(entry, "email", where) if entry.get("email") is not None else None,
        email_verified=email_verified,
        groups=tuple(groups),
        phone_number=_text(entry, "phoneNumber", where) if entry.get("phoneNumber") is not None else None,
        phone_number_verified=phone_verified,
        address=_address(entry.get("address"), where),
        profile=_profile(entry, where),
    )
    return user, password_hash


def _profile(entry: Mapping[str, Any], where: str) -> tuple[tuple[str, str | int], ...]:
    """The profile fields the entry has, checked as OIDC Core §5.1 types them."""
    found: dict[str, str | int] = {}
    for field, claim in PROFILE_FIELDS.items():
        value = entry.get(field)
        if value is None:
            continue
        if claim == "updated_at":
            if isinstance(value, datetime.datetime):  # YAML reads an unquoted timestamp as one
                value = int(value.replace(tzinfo=value.tzinfo or datetime.UTC).timestamp())
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UserDirectoryError(
                    f"{where}: updatedAt must be a number of seconds since 1970 (or a timestamp)"
                )
            found[claim] = value
            continue
        if isinstance(value, datetime.date) and claim == "birthdate":  # unquoted 1990-05-17
            value = value.isoformat()
        text = _text({**entry, field: value}, field, where)
        if claim == "birthdate" and not BIRTHDATE.fullmatch(text):
            raise UserDirectoryError(f"{where}: birthdate must be YYYY-MM-DD, YYYY or 0000-MM-DD")
        if claim in URL_CLAIMS and not text.startswith(("https://", "http://")):
            raise UserDirectoryError(f"{where}: {field} must be an http(s) URL")
        found[claim] = text
    return tuple((claim, found[claim]) for claim in PROFILE_CLAIMS if claim in found)


def _address(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        raise UserDirectoryError(f"{where}: address must be a mapping of {', '.join(ADDRESS_FIELDS)}")
    unknown = set(value) - set(ADDRESS_FIELDS)
    if unknown:
        raise UserDirectoryError(
            f"{where}: address has unknown fields {', '.join(sorted(map(str, unknown)))}; "
            f"known: {', '.join(ADDRESS_FIELDS)}"
        )
    return tuple((name, _text(value, name, f"{where}: address")) for name in ADDRESS_FIELDS if name in value)


def _text(entry: Mapping[str, Any], field: str, where: str) -> str:
    value = entry.get(field)
    if value is None:
        raise UserDirectoryError(f"{where}: {field} is missing")
    if not isinstance(value, str) or not value.strip():
        raise UserDirectoryError(f"{where}: {field} must be a non-empty string (quote it in YAML)")
    if value != value.strip():
        raise UserDirectoryError(f"{where}: {field} has leading or trailing spaces")
    return value


def _check_hash(password_hash: str, where: str) -> None:
    if password_hash.startswith(_ARGON2_PREFIXES):
        try:
            argon2.extract_parameters(password_hash)
        except InvalidHashError:
            raise UserDirectoryError(f"{where}: passwordHash is a malformed argon2 hash") from None
        return
    if password_hash.startswith("$2"):
        if not _BCRYPT.fullmatch(password_hash):
            raise UserDirectoryError(f"{where}: passwordHash is a malformed bcrypt hash")
        return
    raise UserDirectoryError(
        f"{where}: passwordHash is in no known format: use argon2 ($argon2id$...) or bcrypt ($2b$...); "
        "make one with 'kubeoidc hash-password'"
    )


def _verify(password_hash: str, password: str) -> bool:
    secret = password.encode("utf-8")
    if password_hash.startswith("$2"):
        if len(secret) > _BCRYPT_MAX_BYTES:
            return False
        return bool(bcrypt.checkpw(secret, password_hash.encode("ascii")))
    try:
        return _HASHER.verify(password_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def _hash_like(hashes: list[str]) -> str:
    """A hash of a random password with the most common kind and cost among ``hashes`` (argon2id if none)."""
    password = secrets.token_urlsafe(16)
    by_cost = {_cost_of(h): h for h in hashes}
    if not by_cost:
        return _HASHER.hash(password)
    model = by_cost[Counter(_cost_of(h) for h in hashes).most_common(1)[0][0]]
    if model.startswith("$2"):
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=int(model[4:6]))).decode("ascii")
    return argon2.PasswordHasher.from_parameters(argon2.extract_parameters(model)).hash(password)


def _cost_of(password_hash: str) -> str:
    """A hash up to its salt: kind and cost, as ``$2b$12`` or ``$argon2id$v=19$m=65536,t=3,p=4``."""
    return "$".join(password_hash.split("$")[: 3 if password_hash.startswith("$2") else 4])
