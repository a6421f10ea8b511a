"""Shared helpers for the RNN course notebooks (tests with helpful messages, plotting, data).

Students install this package with the course; it holds no graded solutions.
"""

__version__ = "0.1.0"
