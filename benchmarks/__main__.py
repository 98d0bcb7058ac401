"""python -m benchmarks: see benchmarks.bench (make bench)."""
import sys

from .bench import main

sys.exit(main())
