import sys

from tf_cnn_benchmarks.tf_cnn_benchmarks import main

sys.exit(main())
