"""xs_bench: the benchmark harness of xmpp-shard-loadgen (loadgen/bench/run-bench).

Thin wrappers around deploy/xs_local (which renders and runs the Prosody instances and the
proxy config); only what xs_local does not do lives here:
  tls        STARTTLS on an xs_local instance (self-signed P-256 certificates + the tls module)
  haproxy    Debian's HAProxy in TCP mode, routing on a payload match of the stream header
  topology   topologies A-E of issue 6, brought up and torn down as one unit
  loadgen    running xmpp-shard-loadgen and reading its JSON report
"""
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if os.path.join(REPO, "deploy") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "deploy"))
