"""`python -m monitoring_dashboard`: same as the `monitoring-dashboard` command."""

import sys

from monitoring_dashboard.cli import main

sys.exit(main())
