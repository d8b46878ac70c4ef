"""Everything the pipeline keeps in the app's SQLite file, with one owner per table.

Only the modules here write SQL against the tool's ``_s2w_*`` tables (capture keeps its
own bookkeeping, ``_s2w_capture`` and ``_s2w_context``, next to the triggers it
generates). Each table has one module:

* ``registry``     ``_s2w_objects``       what the tool created (nothing else is ever dropped)
* ``lanes``        ``_s2w_outbox``, ``_s2w_bulk``  the live and the bulk lane of changes
* ``state``        ``_s2w_state``         checkpoints, phase, last verify, job secret (typed keys)
* ``resends``      ``_s2w_resends``       re-sends the relay owes after a fault
* ``dead_letters`` ``_s2w_dead_letters``  rows the mapping or Weaviate refused
* ``progress``     (read-only)            how far the pipeline has got, for every caller
* ``txn``          explicit ``BEGIN IMMEDIATE`` transactions

The store depends on nothing else in the package but ``errors`` and ``sqlite_text``.
"""
