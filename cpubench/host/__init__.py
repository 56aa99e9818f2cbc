"""This machine: its topology from sysfs, the facts that explain its speed, the typed host record, the machine lock.

The lowest room: imports nothing of cpubench, only the engine's :mod:`tf_cnn_benchmarks.hostfacts`. Functions
that read the machine say so in their names (``read``, ``collect``); the rest is arithmetic on what was read.
"""
