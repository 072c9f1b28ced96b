#!/bin/sh
# /usr/bin/xmpp-shard-deploy (Debian package): the deploy tool lives in /usr/lib/xmpp-shard/deploy.
# -B: no bytecode caches next to the installed modules.
exec /usr/bin/python3 -B /usr/lib/xmpp-shard/deploy/xmpp-shard-deploy "$@"
