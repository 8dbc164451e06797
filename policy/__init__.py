"""The CrossGuard policy pack (rules.py, adapters.py); `__main__.py` is its entry point.

A package so that the tests and mypy import `policy.rules` and `policy.adapters`; the Pulumi CLI
instead runs this directory as a script (see __main__.py).
"""
