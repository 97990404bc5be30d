"""Contracts: settings, names, schemas and rules every layer shares. Imports nothing of ours."""
