#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        from django.conf import settings

        settings._setup()  # read the settings here, where a mistake can be said in words
    except (ImproperlyConfigured, ValueError) as problem:
        sys.exit(f"The shop's configuration is wrong: {problem}")
    execute_from_command_line(sys.argv)
