# Instructors' servers: formgrader and the assignment tools work on the course in ~/drylab
# (drylab_hub.install_course puts it there).
import os

c = get_config()  # noqa: F821 (traitlets injects get_config into config files)

c.CourseDirectory.root = os.path.join(os.path.expanduser("~"), "drylab")
