"""Dry Lab command-line dispatcher. The work lives in ``synthetic_data`` and ``autograder``."""
