"""django-pagecall: connect a Django site to Pagecall.

The public modules are ``models``, ``signals``, ``tasks``, ``client`` and
``emulator``; see the docs (docs/) for what each promises.
"""

__version__ = "0.1.0"
