"""The ``icn`` command line."""
