"""Result types: the frozen dataclasses the queries return and the metrics, charts, views, pack
and pages consume, and the dates as they are typed at the query boundary (``results.dates``).

The bottom layer with ``models`` and ``db`` (the import contract in pyproject.toml): plain values,
no session, no SQL, nothing of ``dashboard`` above it, so ``metrics`` and ``charts`` can take them
without reaching up into ``queries``.
"""
