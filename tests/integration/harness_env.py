"""
harness_env.py - where the integration tests find things (not a test).

Owns the locations every other harness module starts from, read once from
the environment:

  - REPO: the source tree (WSGATE_SRCDIR, default the tree this file is in);
  - BIN: the daemon (WSGATE_BIN, default <repo>/src/wsgate);
  - WRAPPER: an optional command prefix for it (WSGATE_WRAPPER, such as
    "valgrind --error-exitcode=99 --leak-check=full");
  - HOST: 127.0.0.1, the one address all test traffic goes to.
"""

import os
import shlex

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("WSGATE_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("WSGATE_BIN") or os.path.join(REPO, "src", "wsgate")
WRAPPER = shlex.split(os.environ.get("WSGATE_WRAPPER", ""))
HOST = "127.0.0.1"
