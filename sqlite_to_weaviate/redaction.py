"""Connection URLs without their passwords, for every message a human or a log may see.

A Redis URL carries its password in the user-info part (``redis://:pw@host:6379/0``,
``redis://user:pw@host``, ``unix://:pw@/path``); so may any URL a user pastes. Errors,
reprs and log lines name the URL through :func:`redact_url`, which keeps everything an
operator needs to recognise it (scheme, user, host, port, path) and masks the password,
and the value of any query option named like a password (a Sentinel URL's
``?sentinel_password=``). It works on malformed URLs too, because that is exactly when
an error quotes one.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://")
MASK = "***"


def _mask_query(text: str) -> str:
    """``text`` with the values of ``...password...=`` query options replaced by ``***``."""
    base, qmark, query = text.partition("?")
    if not qmark:
        return text
    items = []
    for item in query.split("&"):
        key, eq, _value = item.partition("=")
        items.append(f"{key}={MASK}" if eq and "password" in key.lower() else item)
    return f"{base}?{'&'.join(items)}"


def redact_url(url: object) -> str:
    """``url`` as text with any password in its user-info, and any password-named query
    option, replaced by ``***``.

    Everything between ``scheme://`` and the *last* ``@`` is user-info (an unencoded ``@``
    or ``/`` in a password must not leak the rest of it); its user name is kept.
    """
    text = str(url)
    head = _SCHEME.match(text)
    if head is None:
        return text
    rest = text[head.end():]
    if "@" not in rest:
        return f"{text[:head.end()]}{_mask_query(rest)}"
    userinfo, _, tail = rest.rpartition("@")
    user, sep, _password = userinfo.partition(":")
    masked = f"{user}:{MASK}" if sep else MASK
    return f"{text[:head.end()]}{masked}@{_mask_query(tail)}"
