"""nbgrader's file-system exchange with submissions only the instructor can open.

Stock nbgrader 0.9.6 leaves a submission directory in inbound 0777 with 0644 files; what keeps
residents apart is only that inbound cannot be listed and the name ends in 72 random bits.
Here the submission directory becomes 0770: inbound is set-group-id and belongs to the
instructor's group, so the directory nbgrader creates in it belongs to that group too; the
instructor (group) can read and delete, another resident ("other") cannot even enter it,
whatever the modes of the files inside. The resident's server uses this class through
ExchangeFactory.submit (jupyter-config/common/nbgrader_config.py).
"""

import os

from nbgrader.exchange.default.submit import ExchangeSubmit

SUBMISSION_DIR_MODE = 0o770


class DrylabExchangeSubmit(ExchangeSubmit):
    def copy_files(self):
        super().copy_files()
        dest = os.path.join(self.inbound_path, self.assignment_filename)
        if os.stat(dest).st_gid == os.stat(self.inbound_path).st_gid:
            os.chmod(dest, SUBMISSION_DIR_MODE)
        else:
            # Without the instructor's group on the directory, closing it would lock the
            # instructor out too; keep nbgrader's modes and say so.
            self.log.warning(
                "Submission %s is not in the group of %s (is inbound set-group-id?); leaving "
                "nbgrader's default permissions", dest, self.inbound_path)
