"""Tests of production backends against real services (``scripts/services start``)."""
