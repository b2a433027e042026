"""Simulated CANN device."""
