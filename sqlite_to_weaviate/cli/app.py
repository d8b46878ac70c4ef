"""The ``sqlite-to-weaviate`` command group, and the one way to declare a command.

Every command is a function decorated with :func:`command`: it receives ``settings`` (a
:class:`~sqlite_to_weaviate.settings.Settings` built from the shared options, which are
derived from the settings model) plus its own click options, and every failure to run
becomes one ``error:`` line and exit code 3.

Exit codes, for cron jobs and alerting:

  0  success / healthy          1  differences or problems found (status, verify, ...)
  2  differences found and repaired (verify --repair)
  3  could not run: bad configuration or usage, unreachable service, invalid input, any error

Codes 1 and 2 mean something only when the command ran to the end, so *every* failure to
run -- a click usage error (which click itself would exit with 2), a refused setting, an
error from SQLite, Weaviate or Redis, even a bug -- is one ``error:`` line on stderr and
exit code 3, never a traceback that a cron job would read as 1.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import Any

import click

from .failures import friendly_errors, one_line
from .options import settings_options

EXIT_OK, EXIT_PROBLEMS, EXIT_REPAIRED, EXIT_CANNOT_RUN = 0, 1, 2, 3


class OneLineErrors:
    """Mixin for click commands and groups: usage errors become one line and exit code 3.

    Click exits with 2 on a usage error, which for ``verify`` means "repaired"; a declined
    confirmation would exit with 1 ("differences found"). Both mean "did not run" here.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)  # type: ignore[misc]
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)  # type: ignore[misc]
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            click.echo(f"error: no command given (see '{exc.ctx.command_path if exc.ctx else ''} --help')", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else (prog_name or self.name)  # type: ignore[attr-defined]
            hint = f" (see '{where} --help')"
            click.echo(f"error: {one_line(exc.format_message())}{hint}", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except click.ClickException as exc:
            click.echo(f"error: {one_line(exc.format_message())}", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except click.Abort:
            click.echo("error: aborted; nothing was changed", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except OSError as exc:
            if exc.errno != errno.EPIPE:  # anything else was a failure to run (friendly_errors covers commands)
                raise
            sys.exit(EXIT_PROBLEMS)  # stdout closed early (| head): as click does
        sys.exit(result if isinstance(result, int) else EXIT_OK)


class Command(OneLineErrors, click.Command):
    """A command whose usage errors exit with 3 even when invoked on its own (tests, Python)."""


class Group(OneLineErrors, click.Group):
    command_class = Command
    group_class = type  # subgroups are Groups too


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="sqlite-to-weaviate")
def main() -> None:
    """Move a live SQLite database into Weaviate with zero downtime, and prove nothing was lost."""


def command(group: click.Group, name: str, *, needs_database: bool = True,
            **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """Declare ``name`` on ``group``: the function gets ``settings`` and its own options
    (``needs_database=False``: ``--sqlite-url`` is optional, ``settings.sqlite_path`` may be None)."""

    def decorate(func: Callable[..., Any]) -> click.Command:
        return group.command(name, cls=Command, **kwargs)(
            friendly_errors(settings_options(func, needs_database=needs_database)))

    return decorate
