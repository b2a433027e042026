"""Stress suite: many real processes on one cache root, with SIGKILL at random points."""
