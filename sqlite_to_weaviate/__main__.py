"""``python -m sqlite_to_weaviate`` is the same as the ``sqlite-to-weaviate`` command."""

from sqlite_to_weaviate.cli import main

main()
