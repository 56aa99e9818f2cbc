"""The results store: the only code that knows ``<root>/<host-id>/host.json``, ``runs.jsonl`` and ``logs/``.

Reading and writing run and host records, merging host folders, parsing upstream logs and importing them as
records. May import :mod:`cpubench.spec` and :mod:`cpubench.host`; nothing that runs engines or renders.
"""
