#!/usr/bin/env python
"""The example site's manage.py: ``python example_project/manage.py pagecall_demo``."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The example package sits beside this file, whatever the current directory is.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
