"""Grading tooling for the RNN course: nbgrader configuration, reference loader, fixtures."""
