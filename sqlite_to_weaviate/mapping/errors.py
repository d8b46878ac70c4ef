"""The two errors of the mapping layer.

They are deliberately different: a :class:`MappingError` means the *mapping* is wrong
(bad config, unsupported schema) and the process should stop with a message naming the
fix; a :class:`ConversionError` means one *row* cannot be represented in Weaviate and
must go to the dead-letter table while the rest of the batch proceeds.
"""

from __future__ import annotations

from typing import Any

from sqlite_to_weaviate.errors import S2WError


class MappingError(S2WError, ValueError):
    """The mapping or its configuration is invalid; the message says what to change.

    An :class:`~sqlite_to_weaviate.errors.S2WError`, so every command turns it into one
    line and exit code 3 (could not run) instead of a traceback.
    """


class ConversionError(ValueError):
    """One value of one row cannot be converted to its Weaviate property.

    Carries the table, the primary-key values, the column and a human reason so the
    dead-letter table can store them as separate fields; ``kind`` and ``fix`` (see
    :class:`ValueConversionError`) let the dry run and verify group refusals and say
    what to write in the mapping.
    """

    def __init__(self, table: str, pk: tuple[Any, ...] | None, column: str, reason: str,
                 kind: str = "", fix: str | None = None) -> None:
        self.table = table
        self.pk = pk
        self.column = column
        self.reason = reason
        self.kind = kind or "cannot convert"
        self.fix = fix
        super().__init__(f"{table}{list(pk) if pk is not None else ''}.{column}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the exception picklable (RQ and multiprocessing copy exceptions).
        return (ConversionError, (self.table, self.pk, self.column, self.reason, self.kind, self.fix))


class ValueConversionError(ValueError):
    """Raised by the pure value converters, which do not know the row they are in.

    :meth:`TableMapping.to_object` turns it into a :class:`ConversionError` with the
    table, key and column filled in. ``kind`` is a short label shared by every value
    refused for the same reason (``"beyond ±2^53"``), so refusals can be counted by
    reason; ``fix`` is the column type that would keep such a value (``"text"``), or
    None when no type can (the data itself must change).
    """

    def __init__(self, message: str, *, kind: str = "cannot convert", fix: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.fix = fix

    def __reduce__(self) -> tuple[Any, ...]:
        return (_value_error, (str(self), self.kind, self.fix))


def _value_error(message: str, kind: str, fix: str | None) -> ValueConversionError:
    return ValueConversionError(message, kind=kind, fix=fix)
