"""Dagster: definitions, resources, partitions, assets, checks, sensors and schedules per layer."""
