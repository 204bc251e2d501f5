"""An example site using django-pagecall, run against the bundled emulator by scripts/demo.sh."""
