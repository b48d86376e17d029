"""The built-in localsearch plugins, installed as the package ``localsearch_plugins``.

Each module is one plugin, registered through the ``localsearch`` entry-point group exactly as
a third-party plugin is; each implementation is ``trylast`` so any other plugin wins.
"""
