"""Code the test modules share: tiny models, a small problem, config composition, data files.

Test modules import from here and never from each other; fixtures stay in ``conftest.py``.
"""
