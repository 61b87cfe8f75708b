"""Nothing to set up for socklab: installing it registers its pytest plugin.

testcontainers' reaper container (Ryuk) is pulled from a registry; on a machine without
one, turn it off (the containers of test_testcontainers.py are removed by their `with`).
"""

import os

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
