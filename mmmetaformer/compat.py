"""Compatibility fixes (filled in by the compat work)."""
