"""nbgrader configuration for the RNN course: the repository root is the course directory.

All settings live in autograder/config.py so that the grading tests use the same ones.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from autograder.config import configure  # noqa: E402

c = get_config()  # noqa: F821
configure(c, os.path.dirname(os.path.abspath(__file__)))
