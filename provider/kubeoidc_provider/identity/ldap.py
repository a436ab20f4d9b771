"""An LDAP or Active Directory source (ldap3): find the user with the service account, bind as them.

Every call blocks on the network: callers run it on a worker thread, never on the event loop. Each
sign-in opens its own connections (service, then user), so a server restarted between sign-ins costs
nothing, and a server that is down is reported as :class:`LDAPUnavailable`, not as a wrong password.

Safety:
- the typed username goes into the search filter escaped (RFC 4515, ``escape_filter_chars``), and the
  user's DN into the group filter likewise: ``*)(uid=*`` finds nobody;
- an empty password is refused before any bind: LDAP treats it as an anonymous bind, which succeeds;
- a username that matches more than one entry signs nobody in;
- TLS (LDAPS or StartTLS) verifies the server's certificate against the configured CA (or the
  system's); a plain ``ldap://`` needs ``insecureNoTLS``, meant for tests;
- the password is never logged, nor put in an exception message.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from kubeoidc_provider.identity.spec import LDAPDefinition
from kubeoidc_provider.identity.subjects import source_subject
from kubeoidc_provider.users import PROFILE_CLAIMS, URL_CLAIMS, User

__all__ = ["LDAPSource", "LDAPUnavailable"]

logger = logging.getLogger(__name__)
#: A search that matches more entries than this is refused: a username names one person.
_USER_SIZE_LIMIT = 2
_GROUP_SIZE_LIMIT = 1000


class LDAPUnavailable(Exception):
    """The server cannot be reached, or the service account cannot bind: nobody can be checked now."""


@dataclass(frozen=True, slots=True)
class _Entry:
    dn: str
    attributes: dict[str, Any]


class LDAPSource:
    """Checks usernames and passwords against one LDAP server."""

    def __init__(self, definition: LDAPDefinition) -> None:
        self.definition = definition
        self.name = definition.name
        self._use_ssl = definition.url.startswith("ldaps://")
        self._tls = None
        if self._use_ssl or definition.start_tls:
            self._tls = Tls(
                validate=ssl.CERT_REQUIRED,
                version=ssl.PROTOCOL_TLS_CLIENT,
                ca_certs_data=definition.ca_pem,
            )

    def _server(self) -> Server:
        # A new Server each time: ldap3 marks an address that failed once as unusable for good, which
        # would outlive a server restart.
        return Server(
            self.definition.url,
            use_ssl=self._use_ssl,
            tls=self._tls,
            connect_timeout=self.definition.timeout,
            get_info=NONE,
        )

    def check(self) -> None:
        """Connect and bind as the service account; :class:`LDAPUnavailable` says why not."""
        _close(self._connect(self.definition.bind_dn, self.definition.bind_password))

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password is theirs; ``None`` for an unknown user or a wrong password."""
        if not username or not password:
            return None
        service = self._connect(self.definition.bind_dn, self.definition.bind_password)
        try:
            entry = self._find_user(service, username)
            if entry is None:
                return None
            if not self._password_matches(entry.dn, password):
                return None
            groups = self._groups(service, entry)
        finally:
            _close(service)
        return self._user(entry, username, groups)

    # Steps ------------------------------------------------------------------------------------------
    def _connect(self, user: str | None, password: str | None) -> Connection:
        d = self.definition
        connection = Connection(
            self._server(), user=user, password=password, receive_timeout=d.timeout, read_only=True
        )
        try:
            connection.open()
            if d.start_tls and not connection.start_tls():
                raise LDAPUnavailable(f"LDAP source {d.name}: StartTLS was refused")
            if not connection.bind():
                raise LDAPUnavailable(
                    f"LDAP source {d.name}: the service bind failed ({connection.result.get('description')})"
                )
        except LDAPException as error:
            _close(connection)
            raise LDAPUnavailable(f"LDAP source {d.name}: {type(error).__name__}: {error}") from None
        except LDAPUnavailable:
            _close(connection)
            raise
        return connection

    def _find_user(self, service: Connection, username: str) -> _Entry | None:
        d = self.definition
        search = f"(&{d.user_filter}({d.username_attribute}={escape_filter_chars(username)}))"
        attributes = [d.username_attribute, d.id_attribute, d.email_attribute, d.name_attribute, "memberOf"]
        attributes += [attribute for _, attribute in (*d.claim_attributes, *d.address_attributes)]
        entries = self._search(service, d.user_base_dn, search, attributes, _USER_SIZE_LIMIT)
        if len(entries) != 1:
            if len(entries) > 1:
                logger.warning("LDAP source %s: a username matches several entries; nobody signs in", d.name)
            return None
        return entries[0]

    def _password_matches(self, dn: str, password: str) -> bool:
        d = self.definition
        connection = Connection(self._server(), user=dn, password=password, receive_timeout=d.timeout)
        try:
            connection.open()
            if d.start_tls and not connection.start_tls():
                raise LDAPUnavailable(f"LDAP source {d.name}: StartTLS was refused")
            return bool(connection.bind())
        except LDAPException as error:
            raise LDAPUnavailable(f"LDAP source {d.name}: {type(error).__name__}") from None
        finally:
            _close(connection)

    def _groups(self, service: Connection, entry: _Entry) -> tuple[str, ...]:
        d = self.definition
        if d.group_base_dn is None:
            return tuple(_first_rdn_value(dn) for dn in _values(entry.attributes.get("memberOf")))
        search = f"(&{d.group_filter}({d.group_member_attribute}={escape_filter_chars(entry.dn)}))"
        groups = self._search(service, d.group_base_dn, search, [d.group_name_attribute], _GROUP_SIZE_LIMIT)
        names = (_first(group.attributes.get(d.group_name_attribute)) for group in groups)
        return tuple(sorted(name for name in names if name))

    def _search(
        self, connection: Connection, base: str, search: str, attributes: list[str], limit: int
    ) -> list[_Entry]:
        d = self.definition
        try:
            connection.search(
                base, search, SUBTREE, attributes=attributes, size_limit=limit, time_limit=d.timeout
            )
        except LDAPException as error:
            raise LDAPUnavailable(
                f"LDAP source {d.name}: the search failed: {type(error).__name__}"
            ) from None
        if connection.result.get("result") not in (0, 4):  # success, or sizeLimitExceeded (checked below)
            raise LDAPUnavailable(
                f"LDAP source {d.name}: the search failed ({connection.result.get('description')})"
            )
        return [
            _Entry(str(item["dn"]), dict(item.get("attributes", {})))
            for item in connection.response or []
            if item.get("type") == "searchResEntry"
        ]

    def _user(self, entry: _Entry, typed: str, groups: tuple[str, ...]) -> User | None:
        d = self.definition
        stable_id = _first(entry.attributes.get(d.id_attribute))
        if not stable_id:
            logger.warning("LDAP source %s: an entry has no %s; it cannot sign in", d.name, d.id_attribute)
            return None
        email = _first(entry.attributes.get(d.email_attribute))
        mapped = {claim: entry.attributes.get(attribute) for claim, attribute in d.claim_attributes}
        phone = _first(mapped.pop("phone_number", None))
        address = tuple(
            (member, value.replace("$", "\n") if member == "formatted" else value)
            for member, attribute in d.address_attributes
            if (value := _first(entry.attributes.get(attribute)))
        )
        return User(
            id=source_subject(d.name, stable_id),
            username=_first(entry.attributes.get(d.username_attribute)) or typed,
            name=_first(entry.attributes.get(d.name_attribute)),
            email=email,
            # The directory is the organisation's own record of the address and the phone number.
            email_verified=email is not None,
            groups=groups,
            phone_number=phone,
            phone_number_verified=phone is not None,
            address=address,
            profile=tuple(
                (claim, found)
                for claim in PROFILE_CLAIMS
                if claim in mapped and (found := _profile_value(claim, mapped[claim])) is not None
            ),
        )


def _profile_value(claim: str, value: Any) -> str | int | None:
    """An attribute's value as the claim's type (OIDC Core §5.1), or None when it cannot be one."""
    if claim == "updated_at":
        return _seconds(value[0] if isinstance(value, list | tuple) and value else value)
    text = _first(value)
    if text is not None and claim in URL_CLAIMS:
        text = text.split()[0]  # a labeledURI is "URI label"
    return text


def _seconds(value: Any) -> int | None:
    """Seconds since 1970 of an LDAP GeneralizedTime (ldap3 gives a datetime when it knows the schema)."""
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value or "").replace(",", ".")
        try:
            moment = datetime.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)
        except ValueError:
            return None
    return int(moment.replace(tzinfo=moment.tzinfo or datetime.UTC).timestamp())


def _close(connection: Connection) -> None:
    """Unbind, and close the socket too: ldap3 leaves it open when opening or StartTLS failed."""
    with contextlib.suppress(LDAPException):
        connection.unbind()
    socket = getattr(connection, "socket", None)
    if socket is not None:
        socket.close()


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)] if value != "" else []


def _first(value: Any) -> str | None:
    values = _values(value)
    return values[0] if values else None


def _first_rdn_value(dn: str) -> str:
    try:
        return str(parse_dn(dn)[0][1])
    except (LDAPException, IndexError):
        return dn
