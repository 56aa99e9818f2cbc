"""fleet: one sweep on many hosts at once through Dask distributed, each host's records streamed home as they are
measured; may import sweep, render, execution, analysis, results, spec, host (never commands or tune).

Dask does the dispatch (one task per host, restricted to that host's worker, which has one thread and a ``host=1``
resource), the failure detection (a worker that dies leaves the scheduler) and the transport (worker events); this
room only says what each host runs and files what comes back:

- :mod:`cpubench.fleet.connect`: scheduler addresses, TLS (Dask's ``Security``), the one-line risk of plain tcp;
- :mod:`cpubench.fleet.job`: what one host is asked to run (the config's text, validated here, resolved there);
- :mod:`cpubench.fleet.worker`: ``cpubench fleet worker`` and the task each host runs: the real ``cpubench run``
  into the host's own results folder, every finished record sent home while the sweep goes on;
- :mod:`cpubench.fleet.home`: what comes home goes through the store (validated, fsynced, deduplicated, nothing
  outside ``--out``);
- :mod:`cpubench.fleet.dispatch`: ``cpubench fleet run``: locks per host, submission, failures, the scheduler-held
  status that ``cpubench fleet status`` prints (:mod:`cpubench.fleet.status`).
"""
