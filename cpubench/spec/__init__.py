"""What a sweep means, before it touches any host: the axes, a config's validation, plan expansion, run identity.

Pure: loading and validating a config reads no file of the machine it runs on. Whatever depends on a host
(``num_intra_threads: all``, pinned placements, NUMA memory) is resolved against a :class:`cpubench.host.topology.
Topology` passed in, so a plan can be made on one machine and resolved on another (fleet). May import
:mod:`cpubench.host` (the topology's type and placement arithmetic, never a read) and the engine's declarations
(:mod:`tf_cnn_benchmarks.flags`, the model registry).
"""
