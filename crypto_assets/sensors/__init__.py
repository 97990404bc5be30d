"""Automation: the batch Bronze cadence, Bronze -> Silver and Silver -> Gold sensors."""
