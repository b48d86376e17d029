"""localsearch: a private, local AI answer engine for the web.

The core is small and imports nothing heavy; every stage of a question is a plugin hook
(see ``localsearch.hookspecs``).
"""

from .hookspecs import hookimpl

__all__ = ["hookimpl", "__version__"]
__version__ = "0.1.0"
