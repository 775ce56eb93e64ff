# nbgrader settings every Dry Lab server on the hub shares (residents and instructors).
# The hub's spawner puts this directory on JUPYTER_CONFIG_PATH and sets the two variables.
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (traitlets injects get_config into config files)

c.CourseDirectory.course_id = os.environ.get("DRYLAB_COURSE_ID", "drylab")
# The exchange is a directory every server can reach (a local path on a single host, a shared
# RWX volume on Kubernetes); its permissions are set by the hub (drylab_hub.prepare_exchange).
c.Exchange.root = os.environ.get("DRYLAB_EXCHANGE_ROOT", "/srv/nbgrader/exchange")

# Submissions readable by their author and the instructors only (drylab_exchange.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
c.ExchangeFactory.submit = "drylab_exchange.DrylabExchangeSubmit"
