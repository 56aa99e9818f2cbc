"""The verbs of ``cpubench``, one module per verb: its arguments (``add_arguments``) and its ``main``.

A command parses, calls the rooms below and turns their errors into one line and an exit code; the logic lives
below. Nothing imports a command module except :mod:`cpubench.cli`, which loads the one that runs. Commands may
import every other room.
"""
