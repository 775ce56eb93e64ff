# nbgrader's configuration for the Dry Lab course (docs/grading-model.md, "Course layout").
c = get_config()  # noqa: F821 (traitlets injects get_config into config files)

c.CourseDirectory.course_id = "drylab"
c.CourseDirectory.source_directory = "source"

# Files next to a module that are for instructors and the test harness only: the notebook's
# builder and its text, and the misconception variants (wrong answers with their messages).
# nbgrader copies every other file of a module folder into the release.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "make_notebook.py",
    "text.*.yml",
    "misconceptions.yml",
]

# An answer cell's first line assigns None (`n_adults = None`) above the solution region, and
# the solution region becomes this comment in the release: an untouched answer is None, which
# the grader reports as "not attempted", and running it never raises.
c.ClearSolutions.code_stub = {"python": "# your answer here"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
