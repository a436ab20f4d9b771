"""Identity sources: where the people who sign in come from, besides the static users file.

An ``IdentitySource`` resource (``crds/identitysource.yaml``) names an upstream OpenID Provider
(:mod:`.upstream`, a button on the login page) or an LDAP / Active Directory server (:mod:`.ldap`,
checked by the password form). :mod:`.spec` turns a resource and its Secrets into a definition,
:mod:`.subjects` gives every person a ``sub`` that no other source can produce, :mod:`.catalog` holds
the sources in force (fed by the watcher or the dev mode), and :mod:`.directory` is the one place the
provider asks "who is this?".
"""
