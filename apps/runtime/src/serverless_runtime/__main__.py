"""`python -m serverless_runtime` runs the command line."""

import sys

from serverless_runtime.cli import main

sys.exit(main())
