import nbformat, sys
from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell

cells = []
def md(s): cells.append(new_markdown_cell(s.strip("\n")))
def code(s, tags=None):
    c = new_code_cell(s.strip("\n"))
    if tags: c.metadata["tags"] = tags
    cells.append(c)
def sol(gid, s):
    c = new_code_cell(s.strip("\n")); c.metadata["nbgrader"] = {"grade": False, "grade_id": gid, "locked": False, "schema_version": 3, "solution": True, "task": False}; cells.append(c)
def test(gid, pts, s):
    c = new_code_cell(s.strip("\n")); c.metadata["nbgrader"] = {"grade": True, "grade_id": gid, "locked": True, "points": pts, "schema_version": 3, "solution": False, "task": False}; cells.append(c)

exec(open("/tmp/b10/cells_run.py").read())

nb = new_notebook(cells=cells)
nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
 "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py", "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python", "pygments_lexer": "ipython3", "version": "3.11.7"}}
nbformat.write(nb, sys.argv[1])
