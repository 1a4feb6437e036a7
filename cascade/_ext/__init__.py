"""Compiled extensions built from ``ext/*.pyx`` by setup.py (see ext/ for sources)."""
