"""nbgrader's Execute preprocessor, minus the demonstration cells a grade does not depend on.

An autograded notebook runs every cell, but only the solution and test cells decide the grade;
training runs, animations and big figures only make grading slow (for a class: hours). Ordinary
code cells (no nbgrader metadata, so never a solution or a test) that carry the cell tag
``skip-when-grading`` are left unexecuted under ``nbgrader autograde`` and ``nbgrader validate``
(and JupyterLab's Validate button), so the two always run the same cells: a definition a student
puts in such a cell and uses in a graded one fails validation exactly as it fails grading. Each
skipped cell gets one line of output saying so, which the student sees in the validated notebook
and in the feedback. In JupyterLab and nbval the cells run as usual. A student who adds the tag to
a cell only skips that cell of their own notebook; solution and test cells are always executed.

The course config installs it in place of nbgrader's Execute (``autograder/config.py``), so
``Execute.timeout`` and the other Execute settings apply to it unchanged.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute

SKIP_TAG = "skip-when-grading"
SKIP_NOTE = ("[not run when grading: a demonstration cell (tag skip-when-grading). Anything it "
             "defines is not available to the graded cells; define what they need in your "
             "answer cells.]\n")


def skipped(cell) -> bool:
    return (cell.get("cell_type") == "code" and not cell.get("metadata", {}).get("nbgrader")
            and SKIP_TAG in cell.get("metadata", {}).get("tags", []))


class ExecuteGradedCells(Execute):
    """Execute every cell except the tagged demonstration cells (see the module docstring)."""

    def preprocess_cell(self, cell, resources, index):
        if skipped(cell):
            cell.outputs = [new_output("stream", name="stdout", text=SKIP_NOTE)]
            cell.execution_count = None
            return cell, resources
        return super().preprocess_cell(cell, resources, index)
