"""Cross-checks against DeepInverse 0.5 (``make test-reference``, in .venv-reference)."""
