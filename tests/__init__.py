"""ssmri's tests. A package, so that test modules import shared code as ``tests.helpers``."""
