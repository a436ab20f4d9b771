"""The static user directory: reading users.yaml, checking passwords (argon2, bcrypt), claims per scope."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import argon2
import bcrypt
import pytest

from kubeoidc_provider import users as users_module
from kubeoidc_provider.users import (
    StaticUserDirectory,
    User,
    UserDirectory,
    UserDirectoryError,
    hash_password,
)

# Cheap parameters keep the tests fast; the directory takes whatever cost a hash carries.
FAST_ARGON2 = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def argon2_hash(password: str) -> str:
    return FAST_ARGON2.hash(password)


def bcrypt_hash(password: str, prefix: bytes = b"2b") -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4, prefix=prefix)).decode()


ALICE_HASH = argon2_hash("alice-password")
BOB_HASH = bcrypt_hash("bob-password")

USERS_YAML = f"""
users:
  - username: alice
    id: 3f0c9a52-8d4e-4c8e-9a51-0e6f1b7d2c11
    name: Alice Liddell
    email: alice@example.com
    emailVerified: true
    groups: [admins, developers]
    passwordHash: "{ALICE_HASH}"
  - username: bob
    id: "1002"
    passwordHash: '{BOB_HASH}'
"""

ALICE = User(
    id="3f0c9a52-8d4e-4c8e-9a51-0e6f1b7d2c11",
    username="alice",
    name="Alice Liddell",
    email="alice@example.com",
    email_verified=True,
    groups=("admins", "developers"),
)
BOB = User(id="1002", username="bob")


@pytest.fixture(scope="module")
def directory() -> StaticUserDirectory:
    return StaticUserDirectory.from_yaml(USERS_YAML)


def user_yaml(**fields: Any) -> str:
    entry = {"username": "carol", "id": "c1", "passwordHash": argon2_hash("x"), **fields}
    lines = [f"    {name}: {json.dumps(value)}" for name, value in entry.items()]  # JSON is YAML
    lines[0] = "  - " + lines[0].lstrip()
    return "users:\n" + "\n".join(lines) + "\n"


# --- reading ---------------------------------------------------------------------------------------


def test_users_yaml_is_read_into_users(directory: StaticUserDirectory) -> None:
    assert list(directory) == [ALICE, BOB]
    assert len(directory) == 2


def test_the_directory_satisfies_the_protocol(directory: StaticUserDirectory) -> None:
    assert isinstance(directory, UserDirectory)


def test_a_user_is_immutable_and_its_repr_holds_no_hash() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ALICE.name = "Mallory"  # type: ignore[misc]
    directory = StaticUserDirectory.from_yaml(USERS_YAML)
    user = directory.get(ALICE.id)
    assert user is not None
    assert "argon2" not in repr(user)


def test_an_empty_user_list_is_allowed() -> None:
    directory = StaticUserDirectory.from_yaml("users: []")
    assert len(directory) == 0
    assert directory.authenticate("alice", "alice-password") is None


def test_from_file_reads_the_file(tmp_path: Path) -> None:
    (tmp_path / "users.yaml").write_text(USERS_YAML)
    assert StaticUserDirectory.from_file(tmp_path / "users.yaml").get("1002") == BOB


def test_from_file_names_the_file_in_its_errors(tmp_path: Path) -> None:
    with pytest.raises(UserDirectoryError, match=r"cannot read the users file .*missing\.yaml"):
        StaticUserDirectory.from_file(tmp_path / "missing.yaml")
    (tmp_path / "users.yaml").write_text("users:\n  - username: alice\n")
    with pytest.raises(UserDirectoryError, match=r"users\.yaml: users\[0\] \('alice'\): id is missing"):
        StaticUserDirectory.from_file(tmp_path / "users.yaml")


# --- passwords -------------------------------------------------------------------------------------


def test_an_argon2_password_authenticates(directory: StaticUserDirectory) -> None:
    assert directory.authenticate("alice", "alice-password") == ALICE


def test_a_bcrypt_password_authenticates(directory: StaticUserDirectory) -> None:
    assert directory.authenticate("bob", "bob-password") == BOB


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong"),
        ("alice", ""),
        ("alice", "bob-password"),
        ("bob", "alice-password"),
        ("bob", "bob-password "),
        ("Alice", "alice-password"),
        ("nobody", "alice-password"),
        ("", ""),
    ],
)
def test_a_wrong_password_or_an_unknown_user_gets_none(
    directory: StaticUserDirectory, username: str, password: str
) -> None:
    assert directory.authenticate(username, password) is None


@pytest.mark.parametrize("prefix", [b"2a", b"2b", b"2y"])
def test_every_bcrypt_variant_is_accepted(prefix: bytes) -> None:
    password_hash = bcrypt_hash("pw", prefix=b"2b" if prefix == b"2y" else prefix)
    password_hash = f"${prefix.decode()}${password_hash[4:]}"  # the bcrypt package makes no $2y$ itself
    directory = StaticUserDirectory([(BOB, password_hash)])
    assert directory.authenticate("bob", "pw") == BOB


def test_a_bcrypt_password_longer_than_72_bytes_never_matches() -> None:
    long_password = "x" * 80
    truncated_hash = bcrypt.hashpw(long_password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    directory = StaticUserDirectory([(BOB, truncated_hash)])
    assert directory.authenticate("bob", long_password) is None
    assert directory.authenticate("bob", "x" * 72) == BOB


def test_a_non_ascii_password_authenticates() -> None:
    directory = StaticUserDirectory([(BOB, argon2_hash("pässwörd ✓"))])
    assert directory.authenticate("bob", "pässwörd ✓") == BOB
    assert directory.authenticate("bob", "passwörd ✓") is None


def test_hash_password_makes_an_argon2id_hash_the_directory_accepts() -> None:
    password_hash = hash_password("s3cret")
    assert password_hash.startswith("$argon2id$")
    assert StaticUserDirectory([(BOB, password_hash)]).authenticate("bob", "s3cret") == BOB


# --- timing does not reveal which usernames exist -------------------------------------------------


def checks_made(directory: StaticUserDirectory, monkeypatch: pytest.MonkeyPatch, username: str) -> list[str]:
    """The hashes the directory checks a password against when ``username`` signs in."""
    checked: list[str] = []
    real_verify = users_module._verify

    def recording(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(users_module, "_verify", recording)
    directory.authenticate(username, "some password")
    return checked


def test_an_unknown_username_costs_one_check_like_a_known_one(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = StaticUserDirectory(
        [
            (ALICE, argon2_hash("a")),
            (User(id="2", username="dave"), argon2_hash("d")),
            (BOB, bcrypt_hash("b")),
        ]
    )
    (dummy,) = checks_made(directory, monkeypatch, "nobody")
    (real,) = checks_made(directory, monkeypatch, "alice")
    assert dummy != real
    assert argon2.extract_parameters(dummy) == argon2.extract_parameters(real)


def test_the_dummy_hash_follows_the_most_common_kind_and_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = StaticUserDirectory(
        [(ALICE, bcrypt_hash("a")), (BOB, bcrypt_hash("b")), (User(id="3", username="eve"), argon2_hash("e"))]
    )
    (dummy,) = checks_made(directory, monkeypatch, "nobody")
    assert dummy.startswith("$2b$04$")
    assert checks_made(directory, monkeypatch, "mallory") == [dummy]  # made once


def test_an_empty_directory_still_makes_a_check_for_an_unknown_username(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (dummy,) = checks_made(StaticUserDirectory([]), monkeypatch, "nobody")
    assert dummy.startswith("$argon2id$")


# --- lookups and claims ----------------------------------------------------------------------------


def test_get_finds_a_user_by_id_only(directory: StaticUserDirectory) -> None:
    assert directory.get(ALICE.id) == ALICE
    assert directory.get("alice") is None
    assert directory.get("unknown") is None


@pytest.mark.parametrize(
    ("scopes", "claims"),
    [
        (["openid"], {"sub": ALICE.id}),
        (["openid", "profile"], {"sub": ALICE.id, "name": "Alice Liddell", "preferred_username": "alice"}),
        (["openid", "email"], {"sub": ALICE.id, "email": "alice@example.com", "email_verified": True}),
        (["openid", "groups"], {"sub": ALICE.id, "groups": ["admins", "developers"]}),
        (
            ("openid", "profile", "email", "groups", "offline_access"),
            {
                "sub": ALICE.id,
                "name": "Alice Liddell",
                "preferred_username": "alice",
                "email": "alice@example.com",
                "email_verified": True,
                "groups": ["admins", "developers"],
            },
        ),
        ([], {"sub": ALICE.id}),
    ],
)
def test_claims_follow_the_granted_scopes(scopes: list[str], claims: dict[str, Any]) -> None:
    assert ALICE.claims(scopes) == claims


def test_claims_leave_out_what_a_user_does_not_have() -> None:
    assert BOB.claims(["openid", "profile", "email", "groups"]) == {
        "sub": "1002",
        "preferred_username": "bob",
        "groups": [],
    }


def test_claims_accept_any_iterable_of_scopes() -> None:
    assert ALICE.claims(iter(["profile"]))["preferred_username"] == "alice"
    assert ALICE.claims(["openid", "profile"])["name"] == "Alice Liddell"


# --- files that cannot be used ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users: [", "not valid YAML"),
        ("", "expected a mapping with a 'users' list"),
        ("- alice", "expected a mapping with a 'users' list"),
        ("users: {alice: x}", "expected a mapping with a 'users' list"),
        ("users: []\nclients: []", "unknown top-level keys: clients"),
        ("users: [alice]", r"users\[0\]: expected a mapping with username, id and passwordHash"),
    ],
)
def test_a_malformed_file_is_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(UserDirectoryError, match=message):
        StaticUserDirectory.from_yaml(text)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": None}, r"users\[0\]: username is missing"),
        ({"id": None}, r"\('carol'\): id is missing"),
        ({"passwordHash": None}, r"\('carol'\): passwordHash is missing"),
        ({"id": 1001}, "id must be a non-empty string \\(quote it in YAML\\)"),
        ({"id": "x" * 256}, "id must be at most 255 ASCII characters"),
        ({"id": "ïd"}, "id must be at most 255 ASCII characters"),
        ({"username": " carol"}, "username has leading or trailing spaces"),
        ({"passwordHash": "hunter2"}, "passwordHash is in no known format: use argon2"),
        ({"passwordHash": "$1$salt$md5crypt"}, "passwordHash is in no known format"),
        ({"passwordHash": "{SSHA}abcdef"}, "passwordHash is in no known format"),
        ({"passwordHash": "$argon2id$v=19$garbage"}, "malformed argon2 hash"),
        ({"passwordHash": "$2b$12$tooshort"}, "malformed bcrypt hash"),
        ({"password_hash": "x"}, "unknown fields password_hash; known: username, id"),
        ({"emailVerified": "yes"}, "emailVerified must be true or false"),
        ({"groups": "admins"}, "groups must be a list of non-empty strings"),
        ({"groups": ["admins", 7]}, "groups must be a list of non-empty strings"),
        ({"email": ""}, "email must be a non-empty string"),
        ({"givenName": 7}, "givenName must be a non-empty string"),
        ({"birthdate": "May 4th"}, "birthdate must be YYYY-MM-DD, YYYY or 0000-MM-DD"),
        ({"picture": "alice.png"}, "picture must be an http\\(s\\) URL"),
        ({"updatedAt": "yesterday"}, "updatedAt must be a number of seconds since 1970"),
        ({"updatedAt": True}, "updatedAt must be a number of seconds since 1970"),
    ],
)
def test_a_bad_user_entry_is_refused_naming_the_user_and_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(UserDirectoryError, match=message):
        StaticUserDirectory.from_yaml(user_yaml(**fields))


def test_a_duplicate_username_is_refused() -> None:
    text = USERS_YAML + f"  - username: alice\n    id: other\n    passwordHash: '{BOB_HASH}'\n"
    with pytest.raises(UserDirectoryError, match="user 'alice': the username is used by another user too"):
        StaticUserDirectory.from_yaml(text)


def test_a_duplicate_id_is_refused() -> None:
    text = USERS_YAML + f"  - username: carol\n    id: '1002'\n    passwordHash: '{BOB_HASH}'\n"
    with pytest.raises(UserDirectoryError, match="user 'carol': id '1002' is used by another user too"):
        StaticUserDirectory.from_yaml(text)


def test_the_constructor_checks_hashes_too() -> None:
    with pytest.raises(UserDirectoryError, match="user 'bob': passwordHash is in no known format"):
        StaticUserDirectory([(BOB, "plaintext")])


def test_the_standard_profile_fields_are_read_and_released_with_the_profile_scope() -> None:
    text = user_yaml(
        name="Carol Example", givenName="Carol", familyName="Example", middleName="Ann", nickname="Caz",
        profile="https://people.example.com/carol", picture="https://people.example.com/carol.png",
        website="https://carol.example.com", gender="other", birthdate="0000-05-04",
        zoneinfo="Europe/Paris", locale="fr-FR", updatedAt=1767225600,
    )  # fmt: skip
    carol = next(iter(StaticUserDirectory.from_yaml(text)))

    assert carol.claims(["openid", "profile"]) == {
        "sub": "c1",
        "preferred_username": "carol",
        "name": "Carol Example",
        "given_name": "Carol",
        "family_name": "Example",
        "middle_name": "Ann",
        "nickname": "Caz",
        "profile": "https://people.example.com/carol",
        "picture": "https://people.example.com/carol.png",
        "website": "https://carol.example.com",
        "gender": "other",
        "birthdate": "0000-05-04",
        "zoneinfo": "Europe/Paris",
        "locale": "fr-FR",
        "updated_at": 1767225600,
    }
    assert "given_name" not in carol.claims(["openid", "email"])
    assert carol.claims(["openid"], extra=["locale"]) == {"sub": "c1", "locale": "fr-FR"}


def test_unquoted_yaml_dates_are_read_as_the_claims_types() -> None:
    text = user_yaml() + "    birthdate: 1990-05-17\n    updatedAt: 2026-01-01T00:00:00Z\n"
    carol = next(iter(StaticUserDirectory.from_yaml(text)))

    assert carol.claims(["profile"])["birthdate"] == "1990-05-17"
    assert carol.claims(["profile"])["updated_at"] == 1767225600
