"""The shop's settings plus the bare reference endpoint of bench/validate_throughput.py."""

import warnings

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.validate_urls"

# DEBUG is off and collectstatic never ran for the bench: WhiteNoise would warn in every worker.
warnings.filterwarnings("ignore", message="No directory at")
