"""Strategies built on the core loop: each is one folder that calls the core through its public seams."""
