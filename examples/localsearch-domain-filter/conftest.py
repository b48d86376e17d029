# Here so that pytest puts this folder on sys.path: the tests import the plugin from source
# (an installed copy works the same). The fixtures come from localsearch.testing, which
# localsearch registers with pytest.
