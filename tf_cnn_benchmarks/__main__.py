from tf_cnn_benchmarks.tf_cnn_benchmarks import cli

cli()
