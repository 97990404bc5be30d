"""Test stand-in for AWS Glue's `awsglue` module: only what the project's Glue scripts use.

Glue's real module is not on PyPI; it exists inside Glue. On PYTHONPATH only for the local
subprocess that plays a Glue job run in the tests.
"""
