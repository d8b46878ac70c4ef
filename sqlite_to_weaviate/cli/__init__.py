"""The ``sqlite-to-weaviate`` command line: one package, one way to declare a command.

:mod:`.app` holds the group, the exit codes and the :func:`~.app.command` decorator;
:mod:`.options` derives the shared options from the settings model; each other module
declares the commands of one part of the tool. Importing this package registers them all.
"""

from __future__ import annotations

from . import backfill, embeddings, operate, pipeline, suggest_mapping, verify  # noqa: F401 - each registers its commands
from .app import EXIT_CANNOT_RUN, EXIT_OK, EXIT_PROBLEMS, EXIT_REPAIRED, command, main

__all__ = ["EXIT_CANNOT_RUN", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_REPAIRED", "command", "main"]
