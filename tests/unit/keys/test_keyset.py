"""The key set: signing and verifying with each algorithm, the public JWKS, rotation and refusals."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from kubeoidc_contract.jwks import SIGNING_ALGS
from kubeoidc_provider import keys as keys_module
from kubeoidc_provider.keys import (
    InvalidTokenError,
    KeySet,
    KeySetError,
    TokenExpiredError,
    generate_jwks,
)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
NOW = 1_700_000_000


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64int(n: int) -> str:
    return b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(b64decode(token.split(".")[0]))
    return header


def replace_segment(token: str, index: int, value: dict[str, Any]) -> str:
    parts = token.split(".")
    parts[index] = b64encode(json.dumps(value).encode())
    return ".".join(parts)


@pytest.fixture(scope="module")
def jwks_by_alg() -> dict[str, dict[str, Any]]:
    """One generated private JWKS per algorithm (RSA generation is slow: once per module)."""
    return {alg: generate_jwks(alg, kid=f"{alg.lower()}-key") for alg in SIGNING_ALGS}


def two_keys(jwks_by_alg: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"keys": [jwks_by_alg["ES256"]["keys"][0], jwks_by_alg["EdDSA"]["keys"][0]], **extra}


# --- each algorithm -------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", SIGNING_ALGS)
def test_each_algorithm_signs_and_verifies(jwks_by_alg: dict[str, dict[str, Any]], alg: str) -> None:
    keyset = KeySet.from_jwks(jwks_by_alg[alg])
    assert keyset.signing_alg == alg
    token = keyset.sign({"sub": "u1", "aud": "app", "exp": NOW + 60, "name": "Zoë"})
    assert header_of(token) == {"alg": alg, "kid": f"{alg.lower()}-key", "typ": "JWT"}
    assert keyset.verify(token) == {"sub": "u1", "aud": "app", "exp": NOW + 60, "name": "Zoë"}


@pytest.mark.parametrize("alg", SIGNING_ALGS)
def test_signatures_verify_with_the_public_jwks_outside_this_module(
    jwks_by_alg: dict[str, dict[str, Any]], alg: str
) -> None:
    """What a relying party does: take the published key and check the signature with plain cryptography."""
    keyset = KeySet.from_jwks(jwks_by_alg[alg])
    token = keyset.sign({"sub": "u1"})
    (published,) = json.loads(keyset.public_jwks_bytes)["keys"]
    signing_input = token.rpartition(".")[0].encode()
    signature = b64decode(token.rpartition(".")[2])
    if alg == "RS256":
        rsa_key = rsa.RSAPublicNumbers(
            int.from_bytes(b64decode(published["e"]), "big"), int.from_bytes(b64decode(published["n"]), "big")
        ).public_key()
        rsa_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        ec_key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(b64decode(published["x"]), "big"),
            int.from_bytes(b64decode(published["y"]), "big"),
            ec.SECP256R1(),
        ).public_key()
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        ec_key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        ed25519.Ed25519PublicKey.from_public_bytes(b64decode(published["x"])).verify(signature, signing_input)


def test_verify_with_header_gives_the_header_too(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    keyset = KeySet.from_jwks(jwks_by_alg["EdDSA"])
    header, claims = keyset.verify_with_header(keyset.sign({"sub": "u1"}, typ="at+jwt"), typ="at+jwt")
    assert header == {"alg": "EdDSA", "kid": "eddsa-key", "typ": "at+jwt"}
    assert claims == {"sub": "u1"}


def test_sign_sets_the_typ_it_is_given(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    keyset = KeySet.from_jwks(jwks_by_alg["ES256"])
    token = keyset.sign({"sub": "u1"}, typ="at+jwt")
    assert header_of(token)["typ"] == "at+jwt"


def test_claims_json_cannot_carry_are_refused_on_sign(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    keyset = KeySet.from_jwks(jwks_by_alg["ES256"])
    with pytest.raises((TypeError, ValueError)):
        keyset.sign({"sub": {"a", "set"}})


def test_keys_are_parsed_once_when_the_set_is_built(
    jwks_by_alg: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    keyset = KeySet.from_jwks(two_keys(jwks_by_alg))

    def no_parsing(*_: Any, **__: Any) -> None:
        raise AssertionError("a key was parsed after the key set was built")

    for cls in keys_module._KEY_CLASSES.values():
        monkeypatch.setattr(cls, "import_key", no_parsing)
    token = keyset.sign({"sub": "u1"})
    assert keyset.verify(token) == {"sub": "u1"}


# --- generate_jwks --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", SIGNING_ALGS)
def test_generated_jwks_is_private_with_a_thumbprint_kid(alg: str) -> None:
    doc = generate_jwks(alg) if alg != "RS256" else generate_jwks()
    (key,) = doc["keys"]
    assert key["alg"] == alg
    assert key["use"] == "sig"
    assert "d" in key
    members = {
        name: key[name]
        for name in {"RSA": "e kty n", "EC": "crv kty x y", "OKP": "crv kty x"}[key["kty"]].split()
    }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    assert key["kid"] == b64encode(hashlib.sha256(canonical).digest())  # RFC 7638
    assert KeySet.from_jwks(doc).signing_kid == key["kid"]


def test_generated_rsa_key_has_2048_bits() -> None:
    (key,) = generate_jwks("RS256", kid="k")["keys"]
    assert int.from_bytes(b64decode(key["n"]), "big").bit_length() == 2048
    assert key["kid"] == "k"


def test_generating_an_unsupported_algorithm_is_refused() -> None:
    with pytest.raises(
        ValueError, match="unsupported signing algorithm 'HS256': use one of RS256, ES256, EdDSA"
    ):
        generate_jwks("HS256")


# --- the public JWKS ------------------------------------------------------------------------------


def test_public_jwks_carries_public_members_only(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    doc = {"keys": [jwks["keys"][0] for jwks in jwks_by_alg.values()]}
    keyset = KeySet.from_jwks(doc)
    published = json.loads(keyset.public_jwks_bytes)
    assert set(published) == {"keys"}
    assert [key["kid"] for key in published["keys"]] == ["rs256-key", "es256-key", "eddsa-key"]
    for key in published["keys"]:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["use"] == "sig"
        assert key["alg"] in SIGNING_ALGS
    assert set(published["keys"][0]) == {"kty", "n", "e", "kid", "use", "alg"}
    assert set(published["keys"][1]) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert set(published["keys"][2]) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert keyset.public_jwks == published
    assert b'"d"' not in keyset.public_jwks_bytes


def test_public_jwks_drops_members_it_does_not_know(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    key = dict(jwks_by_alg["ES256"]["keys"][0], x5c=["not-ours-to-publish"], secret_note="private")
    published = KeySet.from_jwks({"keys": [key]}).public_jwks["keys"][0]
    assert "x5c" not in published
    assert "secret_note" not in published


def test_algs_lists_the_signing_algorithm_first(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    keyset = KeySet.from_jwks(two_keys(jwks_by_alg, signing_kid="eddsa-key"))
    assert keyset.algs == ("EdDSA", "ES256")
    assert keyset.kids == ("es256-key", "eddsa-key")


# --- which key signs, and rotation ----------------------------------------------------------------


def test_the_first_key_signs_when_no_signing_kid_is_given(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    keyset = KeySet.from_jwks(two_keys(jwks_by_alg))
    assert keyset.signing_kid == "es256-key"
    assert header_of(keyset.sign({}))["kid"] == "es256-key"


def test_signing_kid_names_the_key_that_signs(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    keyset = KeySet.from_jwks(two_keys(jwks_by_alg, signing_kid="eddsa-key"))
    assert (keyset.signing_kid, keyset.signing_alg) == ("eddsa-key", "EdDSA")
    assert header_of(keyset.sign({}))["kid"] == "eddsa-key"


def test_a_token_signed_by_a_retired_but_published_key_still_verifies(
    jwks_by_alg: dict[str, dict[str, Any]],
) -> None:
    before = KeySet.from_jwks(two_keys(jwks_by_alg, signing_kid="es256-key"))
    old_token = before.sign({"sub": "u1"})
    after = KeySet.from_jwks(two_keys(jwks_by_alg, signing_kid="eddsa-key"))
    assert after.verify(old_token) == {"sub": "u1"}
    assert header_of(after.sign({"sub": "u1"}))["kid"] == "eddsa-key"


def test_a_key_published_without_its_private_part_verifies_but_cannot_sign(
    jwks_by_alg: dict[str, dict[str, Any]],
) -> None:
    full = jwks_by_alg["ES256"]["keys"][0]
    old_token = KeySet.from_jwks({"keys": [full]}).sign({"sub": "u1"})
    public_only = {name: value for name, value in full.items() if name != "d"}
    keyset = KeySet.from_jwks({"keys": [jwks_by_alg["EdDSA"]["keys"][0], public_only]})
    assert keyset.verify(old_token) == {"sub": "u1"}
    with pytest.raises(KeySetError, match="the signing key 'es256-key' has no private part"):
        KeySet.from_jwks({"keys": [public_only, jwks_by_alg["EdDSA"]["keys"][0]]})


def test_a_token_from_a_key_no_longer_published_is_refused(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    old_token = KeySet.from_jwks(jwks_by_alg["ES256"]).sign({"sub": "u1"})
    with pytest.raises(InvalidTokenError, match="unknown key id: 'es256-key'"):
        KeySet.from_jwks(jwks_by_alg["EdDSA"]).verify(old_token)


# --- refusals -------------------------------------------------------------------------------------


@pytest.fixture
def keyset(jwks_by_alg: dict[str, dict[str, Any]]) -> KeySet:
    return KeySet.from_jwks(two_keys(jwks_by_alg))


@pytest.fixture
def token(keyset: KeySet) -> str:
    return keyset.sign({"sub": "u1", "exp": NOW + 60})


def test_a_token_with_a_changed_payload_is_refused(keyset: KeySet, token: str) -> None:
    forged = replace_segment(token, 1, {"sub": "admin", "exp": NOW + 60})
    with pytest.raises(InvalidTokenError, match="signature is not valid"):
        keyset.verify(forged)


def test_a_token_with_a_changed_signature_is_refused(keyset: KeySet, token: str) -> None:
    head, _, signature = token.rpartition(".")
    flipped = bytearray(b64decode(signature))
    flipped[0] ^= 1
    with pytest.raises(InvalidTokenError, match="signature is not valid"):
        keyset.verify(f"{head}.{b64encode(bytes(flipped))}")


def test_a_token_with_its_signature_removed_is_refused(keyset: KeySet, token: str) -> None:
    with pytest.raises(InvalidTokenError):
        keyset.verify(token.rpartition(".")[0] + ".")


def test_a_token_with_an_unknown_kid_is_refused(keyset: KeySet, token: str) -> None:
    forged = replace_segment(token, 0, dict(header_of(token), kid="someone-elses"))
    with pytest.raises(InvalidTokenError, match="unknown key id: 'someone-elses'"):
        keyset.verify(forged)


def test_a_token_without_a_kid_is_refused(keyset: KeySet, token: str) -> None:
    header = header_of(token)
    del header["kid"]
    with pytest.raises(InvalidTokenError, match="unknown key id: None"):
        keyset.verify(replace_segment(token, 0, header))


@pytest.mark.parametrize("alg", ["none", "HS256", "EdDSA", "RS256"])
def test_a_header_cannot_choose_another_algorithm_for_the_key(keyset: KeySet, token: str, alg: str) -> None:
    forged = replace_segment(token, 0, dict(header_of(token), alg=alg))
    with pytest.raises(InvalidTokenError, match="is not its key's alg 'ES256'"):
        keyset.verify(forged)


def test_a_token_signed_by_another_key_under_our_kid_is_refused(keyset: KeySet) -> None:
    impostor = KeySet.from_jwks(generate_jwks("ES256", kid="es256-key"))
    with pytest.raises(InvalidTokenError, match="signature is not valid"):
        keyset.verify(impostor.sign({"sub": "admin"}))


def test_a_header_with_members_we_never_set_is_refused(keyset: KeySet, token: str) -> None:
    forged = replace_segment(token, 0, dict(header_of(token), b64=False, crit=["b64"]))
    with pytest.raises(InvalidTokenError, match="never sets: b64, crit"):
        keyset.verify(forged)


@pytest.mark.parametrize(
    "value", ["", "abc", "a.b", "a.b.c.d", "!!!.???.***", "eyJhbGciOiJFUzI1NiJ9.e30", "ünïcode.x.y"]
)
def test_a_malformed_token_is_refused(keyset: KeySet, value: str) -> None:
    with pytest.raises(InvalidTokenError):
        keyset.verify(value)


def test_a_payload_that_is_not_an_object_is_refused(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    key = ec.derive_private_key(
        int.from_bytes(b64decode(jwks_by_alg["ES256"]["keys"][0]["d"]), "big"), ec.SECP256R1()
    )
    keyset = KeySet.from_jwks(jwks_by_alg["ES256"])
    signing_input = (
        f"{b64encode(json.dumps({'alg': 'ES256', 'kid': 'es256-key'}).encode())}.{b64encode(b'[1,2]')}"
    )
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    token = f"{signing_input}.{b64encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    with pytest.raises(InvalidTokenError, match="not a JSON object"):
        keyset.verify(token)


# --- typ, exp and nbf -----------------------------------------------------------------------------


@pytest.mark.parametrize("expected", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_verify_accepts_the_expected_typ_in_any_spelling_rfc_7515_allows(
    keyset: KeySet, expected: str
) -> None:
    assert keyset.verify(keyset.sign({"sub": "u1"}, typ="at+jwt"), typ=expected) == {"sub": "u1"}


def test_an_id_token_does_not_pass_for_an_access_token(keyset: KeySet, token: str) -> None:
    with pytest.raises(InvalidTokenError, match="typ 'JWT' is not 'at\\+jwt'"):
        keyset.verify(token, typ="at+jwt")


def test_without_now_no_time_is_checked(keyset: KeySet) -> None:
    expired = keyset.sign({"sub": "u1", "exp": NOW - 3600})
    assert keyset.verify(expired) == {"sub": "u1", "exp": NOW - 3600}


def test_with_now_an_expired_token_is_refused(keyset: KeySet) -> None:
    token = keyset.sign({"sub": "u1", "exp": NOW})
    assert keyset.verify(token, now=NOW - 1)["sub"] == "u1"
    with pytest.raises(TokenExpiredError, match="expired"):
        keyset.verify(token, now=NOW)
    assert keyset.verify(token, now=NOW + 29, leeway=30)["sub"] == "u1"


def test_with_now_a_token_not_valid_yet_is_refused(keyset: KeySet) -> None:
    token = keyset.sign({"sub": "u1", "exp": NOW + 600, "nbf": NOW + 60})
    with pytest.raises(TokenExpiredError, match="not valid yet"):
        keyset.verify(token, now=NOW)
    assert keyset.verify(token, now=NOW + 60)["sub"] == "u1"
    assert keyset.verify(token, now=NOW + 30, leeway=30)["sub"] == "u1"


@pytest.mark.parametrize(
    "claims", [{"sub": "u1"}, {"exp": "tomorrow"}, {"exp": True}, {"exp": NOW + 60, "nbf": "x"}]
)
def test_with_now_exp_must_be_present_and_times_numeric(keyset: KeySet, claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidTokenError, match=r"exp|nbf"):
        keyset.verify(keyset.sign(claims), now=NOW)


# --- at_hash / c_hash -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "digest"), [("RS256", hashlib.sha256), ("ES256", hashlib.sha256), ("EdDSA", hashlib.sha512)]
)
def test_hash_half_is_the_left_half_of_the_signing_algorithms_hash(
    jwks_by_alg: dict[str, dict[str, Any]], alg: str, digest: Any
) -> None:
    value = "jHkWEdUXMU1BwAsC4vtUsZwnNKpOMKrnLgDyF0u5RYg"
    full = digest(value.encode()).digest()
    assert KeySet.from_jwks(jwks_by_alg[alg]).hash_half(value) == b64encode(full[: len(full) // 2])


def test_hash_half_matches_a_published_worked_example() -> None:
    """Ping Identity's at_hash walk-through: SHA-256, left 128 bits, base64url."""
    keyset = KeySet.from_jwks(generate_jwks("ES256"))  # the value depends on the alg's hash only
    assert keyset.hash_half("dNZX1hEZ9wBCzNL40Upu646bdzQA") == "wfgvmE9VxjAudsl9lc6TqA"


# --- documents that cannot be used ----------------------------------------------------------------


def rsa_jwk(bits: int, kid: str) -> dict[str, Any]:
    numbers = rsa.generate_private_key(65537, bits).private_numbers()
    pub = numbers.public_numbers
    return {
        "kty": "RSA",
        "kid": kid,
        "n": b64int(pub.n),
        "e": b64int(pub.e),
        "d": b64int(numbers.d),
        "p": b64int(numbers.p),
        "q": b64int(numbers.q),
        "dp": b64int(numbers.dmp1),
        "dq": b64int(numbers.dmq1),
        "qi": b64int(numbers.iqmp),
    }


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "the JWKS has no keys"),
        ({"keys": []}, "the JWKS has no keys"),
        ({"keys": {"kid": "k"}}, "the JWKS has no keys"),
        ({"keys": ["not a key"]}, r"keys\[0\] is not a JSON object"),
        ({"keys": [{"kty": "EC", "crv": "P-256"}]}, r"keys\[0\] has no kid"),
        ({"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}, "unsupported key type 'oct'"),
        ({"keys": [{"kty": "EC", "kid": "k", "crv": "P-384"}]}, "unsupported key type 'EC' curve 'P-384'"),
        (
            {"keys": [{"kty": "OKP", "kid": "k", "crv": "X25519"}]},
            "unsupported key type 'OKP' curve 'X25519'",
        ),
        (
            {"keys": [{"kty": "EC", "kid": "k", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]},
            "not a valid EC key",
        ),
        ({"keys": [{"kty": "RSA", "kid": "k", "n": "%%%", "e": "AQAB"}]}, "RSA key of 0 bits"),
    ],
)
def test_an_unusable_jwks_is_refused_clearly(doc: Any, message: str) -> None:
    with pytest.raises(KeySetError, match=message):
        KeySet.from_jwks(doc)


def test_a_short_rsa_key_is_refused() -> None:
    with pytest.raises(
        KeySetError, match="keys\\[0\\] \\(kid 'short'\\): RSA key of 1024 bits; at least 2048"
    ):
        KeySet.from_jwks({"keys": [rsa_jwk(1024, "short")]})


def test_an_rsa_key_made_elsewhere_is_accepted() -> None:
    keyset = KeySet.from_jwks({"keys": [rsa_jwk(2048, "external")]})
    assert keyset.signing_alg == "RS256"
    assert keyset.verify(keyset.sign({"sub": "u1"})) == {"sub": "u1"}


def test_a_duplicate_kid_is_refused(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    key = jwks_by_alg["ES256"]["keys"][0]
    with pytest.raises(KeySetError, match=r"keys\[1\]: kid 'es256-key' is used by another key too"):
        KeySet.from_jwks({"keys": [key, key]})


def test_an_alg_that_does_not_fit_the_key_is_refused(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    key = dict(jwks_by_alg["ES256"]["keys"][0], alg="RS256")
    with pytest.raises(KeySetError, match="alg 'RS256' does not fit a EC key; use ES256"):
        KeySet.from_jwks({"keys": [key]})


def test_an_encryption_key_is_refused(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    key = dict(jwks_by_alg["ES256"]["keys"][0], use="enc")
    with pytest.raises(KeySetError, match="use 'enc'"):
        KeySet.from_jwks({"keys": [key]})


def test_a_key_without_alg_or_use_gets_them_from_its_type(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    bare = {k: v for k, v in jwks_by_alg["EdDSA"]["keys"][0].items() if k not in ("alg", "use")}
    keyset = KeySet.from_jwks({"keys": [bare]})
    assert keyset.signing_alg == "EdDSA"
    assert keyset.public_jwks["keys"][0]["alg"] == "EdDSA"


def test_a_private_part_that_does_not_match_the_public_one_is_refused(
    jwks_by_alg: dict[str, dict[str, Any]],
) -> None:
    other = generate_jwks("ES256")["keys"][0]
    mixed = dict(jwks_by_alg["ES256"]["keys"][0], d=other["d"])
    with pytest.raises(KeySetError, match="not a valid EC key"):
        KeySet.from_jwks({"keys": [mixed]})


def test_a_signing_kid_that_names_no_key_is_refused(jwks_by_alg: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(
        KeySetError, match="signing_kid 'nope' names none of the keys \\(es256-key, eddsa-key\\)"
    ):
        KeySet.from_jwks(two_keys(jwks_by_alg, signing_kid="nope"))


# --- files ----------------------------------------------------------------------------------------


def test_load_reads_a_jwks_file(jwks_by_alg: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(two_keys(jwks_by_alg, signing_kid="eddsa-key")))
    assert KeySet.load(path).signing_kid == "eddsa-key"


def test_load_names_the_file_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(KeySetError, match=r"cannot read the signing keys file .*missing\.json"):
        KeySet.load(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(KeySetError, match=r"broken\.json' is not JSON"):
        KeySet.load(tmp_path / "broken.json")
    (tmp_path / "empty.json").write_text('{"keys": []}')
    with pytest.raises(KeySetError, match=r"empty\.json': the JWKS has no keys"):
        KeySet.load(tmp_path / "empty.json")


# --- one signing key per algorithm -----------------------------------------------------------------


def test_a_set_with_a_key_per_algorithm_signs_each_with_its_own_key() -> None:
    doc = generate_jwks("RS256", also=SIGNING_ALGS)
    keyset = KeySet.from_jwks(doc)

    assert keyset.signing_algs == ("RS256", "ES256", "EdDSA")
    for alg in SIGNING_ALGS:
        header, claims = keyset.verify_with_header(keyset.sign({"sub": "alice"}, alg=alg))
        assert header["alg"] == alg
        assert header["kid"] == doc["signing_kids"][alg]
        assert claims == {"sub": "alice"}
    assert keyset.verify_with_header(keyset.sign({"sub": "a"}))[0]["alg"] == "RS256"


def test_a_key_set_without_signing_kids_signs_each_algorithm_with_its_first_private_key(
    jwks_by_alg: dict[str, dict[str, Any]],
) -> None:
    doc = {"keys": [*jwks_by_alg["ES256"]["keys"], *jwks_by_alg["RS256"]["keys"]]}
    keyset = KeySet.from_jwks(doc)

    assert keyset.signing_alg == "ES256"
    assert keyset.signing_kids == {"ES256": "es256-key", "RS256": "rs256-key"}
    assert not keyset.can_sign("EdDSA")
    with pytest.raises(KeySetError, match="no signing key for EdDSA"):
        keyset.sign({"sub": "a"}, alg="EdDSA")


def test_signing_kids_chooses_among_keys_of_one_algorithm_for_rotation() -> None:
    current, following = generate_jwks("ES256")["keys"][0], generate_jwks("ES256")["keys"][0]
    rsa_key = generate_jwks("RS256")["keys"][0]
    doc = {"signing_kid": rsa_key["kid"], "signing_kids": {"ES256": following["kid"]}}
    keyset = KeySet.from_jwks({**doc, "keys": [rsa_key, current, following]})

    header, _ = keyset.verify_with_header(keyset.sign({"sub": "a"}, alg="ES256"))
    assert header["kid"] == following["kid"]


@pytest.mark.parametrize(
    ("signing_kids", "message"),
    [
        ({"ES256": "nobody"}, "ES256 names 'nobody', none of the keys"),
        ({"ES256": "rs256-key"}, "ES256 names 'rs256-key', a key for RS256"),
        ({"HS256": "rs256-key"}, "unknown algorithm 'HS256'"),
        ({"RS256": "rs256-other"}, "signing_kid 'rs256-key' signs RS256"),
        (["ES256"], "must map algorithms to kids"),
    ],
)
def test_bad_signing_kids_are_refused_clearly(
    jwks_by_alg: dict[str, dict[str, Any]], signing_kids: Any, message: str
) -> None:
    other = {**generate_jwks("RS256")["keys"][0], "kid": "rs256-other"}
    keys = [*jwks_by_alg["RS256"]["keys"], *jwks_by_alg["ES256"]["keys"], other]
    with pytest.raises(KeySetError, match=message):
        KeySet.from_jwks({"signing_kid": "rs256-key", "signing_kids": signing_kids, "keys": keys})


def test_hash_half_follows_the_algorithm_of_the_token_that_carries_it() -> None:
    keyset = KeySet.from_jwks(generate_jwks("RS256", also=SIGNING_ALGS))
    sha512 = hashlib.sha512(b"value").digest()

    assert keyset.hash_half("value", "EdDSA") == base64.urlsafe_b64encode(sha512[:32]).rstrip(b"=").decode()
    assert keyset.hash_half("value", "ES256") == keyset.hash_half("value")
