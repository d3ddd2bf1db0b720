"""Operator commands that talk to a running server: predict, health, bench, soak."""
