"""Why a command could not run, in one line: the text behind every exit code 3."""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

import click

from sqlite_to_weaviate.errors import S2WError

EXIT_CANNOT_RUN = 3


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _weaviate_message(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    text = one_line(str(exc))[:300]
    if status in (401, 403) or "401" in text or "403" in text or "nauthenticated" in text or "nauthorized" in text:
        return ("Weaviate rejected the credentials: check the API key (--api-key / S2W_WEAVIATE_API_KEY) "
                f"and its permissions ({type(exc).__name__})")
    if status == 404 or "404" in text:
        return ("Weaviate answered 404 Not Found: is --weaviate-url the address of a Weaviate server, "
                f"and does the collection exist? ({type(exc).__name__}: {text})")
    return f"Weaviate refused the request: {type(exc).__name__}: {text}"


def failure_message(exc: BaseException) -> str:
    """One line (without ``error:``) saying why a command could not run."""
    import redis
    import weaviate.exceptions

    if isinstance(exc, S2WError):
        return one_line(str(exc))
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, weaviate.exceptions.WeaviateConnectionError,
                        weaviate.exceptions.WeaviateStartUpError)):
        return f"cannot reach a service: {type(exc).__name__}: {one_line(str(exc))[:300]}"
    if isinstance(exc, weaviate.exceptions.WeaviateBaseError):
        return _weaviate_message(exc)
    if isinstance(exc, redis.RedisError):
        return f"Redis refused the request: {type(exc).__name__}: {one_line(str(exc))[:300]}"
    if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, disk full: nothing was committed
        return f"SQLite refused the operation: {one_line(str(exc))} (nothing was changed)"
    if isinstance(exc, sqlite3.DatabaseError):  # a corrupt page ("database disk image is malformed"), ...
        return (f"SQLite cannot read the database: {one_line(str(exc))}; check it with PRAGMA integrity_check and "
                "restore it from a backup if it is damaged (nothing was changed)")
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {one_line(str(exc))}"
    return (f"unexpected {type(exc).__name__}: {one_line(str(exc))[:300]} "
            "(a bug: please report it; --log-level DEBUG logs the traceback)")


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Every failure to run becomes one ``error:`` line on stderr and exit code 3, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise  # usage errors, confirmations, --help: the command class handles them (OneLineErrors)
        except Exception as exc:  # noqa: BLE001 - see failure_message
            if not isinstance(exc, S2WError):  # logging is configured by now (a failure there is a ConfigError)
                from sqlite_to_weaviate.logs import get_logger

                get_logger("s2w.cli").debug("could not run", exc_info=True)
            click.echo(f"error: {failure_message(exc)}", err=True)
            sys.exit(EXIT_CANNOT_RUN)

    return wrapper
