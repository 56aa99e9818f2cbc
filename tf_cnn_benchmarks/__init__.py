"""Our own tf_cnn_benchmarks for TensorFlow 2: the upstream flags and log format, a tf.function/tf.data engine."""

__version__ = "0.1.0"
