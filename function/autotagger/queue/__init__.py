"""Pub/Sub mode: the message format and the worker that consumes it."""
