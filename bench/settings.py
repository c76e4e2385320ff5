"""The shop's settings plus the two reference endpoints of bench/webhook_throughput.py."""

import warnings

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# DEBUG is off and collectstatic never ran for the bench: WhiteNoise would warn in every worker.
warnings.filterwarnings("ignore", message="No directory at")
