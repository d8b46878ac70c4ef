"""Connection URLs without their passwords, for every message a human or a log may see.

A Redis URL carries its password in the user-info part (``redis://:pw@host:6379/0``,
``redis://user:pw@host``, ``unix://:pw@/path``); so may any URL a user pastes. Errors,
reprs and log lines name the URL through :func:`redact_url`, which keeps everything an
operator needs to recognise it (scheme, user, host, port, path) and masks the password.
It works on malformed URLs too, because that is exactly when an error quotes one.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://")
MASK = "***"


def redact_url(url: object) -> str:
    """``url`` as text with any password in its user-info replaced by ``***``.

    Everything between ``scheme://`` and the *last* ``@`` is user-info (an unencoded ``@``
    or ``/`` in a password must not leak the rest of it); its user name is kept.
    """
    text = str(url)
    head = _SCHEME.match(text)
    if head is None or "@" not in text[head.end():]:
        return text
    rest = text[head.end():]
    userinfo, _, tail = rest.rpartition("@")
    user, sep, _password = userinfo.partition(":")
    masked = f"{user}:{MASK}" if sep else MASK
    return f"{text[:head.end()]}{masked}@{tail}"
