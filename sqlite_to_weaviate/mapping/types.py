"""The Weaviate data types a column can be mapped to."""

from __future__ import annotations

import enum


class DataType(str, enum.Enum):
    """Target type of a mapped column.

    The values are the names accepted by ``type = "..."`` in the config file.
    Big integers have no separate marker: map such a column as ``TEXT`` and integers
    are written as their exact decimal string.
    """

    TEXT = "text"
    INT = "int"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    BLOB = "blob"
    OBJECT = "object"

    @classmethod
    def names(cls) -> list[str]:
        return [member.value for member in cls]


#: The largest integer magnitude a float64 represents exactly; Weaviate stores every
#: number (int properties included) as float64, so beyond this an int would be rounded.
MAX_SAFE_INT = 2**53
