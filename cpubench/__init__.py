"""cpubench: run the tf_cnn_benchmarks engine over a matrix of settings per host and compare hosts."""

__version__ = "0.1.0"
