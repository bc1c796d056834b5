"""`hacc lab`: a site's failover behaviour checked on real kernels before it merges.

Stages: plan (pure: namespaces, segments, stand-ins, scenarios, predictions) -> world (namespaces, bridges,
daemons, netlink monitors) -> runner (inject, observe, compare, restore) -> report (pure renderings).

How a node runs in the lab. Each node gets a network namespace holding the site's interfaces (veth pairs
whose other ends sit on one bridge per IPv4 segment, in a namespace of their own; nothing is connected to
the host's namespace) and a private mount namespace (`unshare -m`) in which, before the daemon is exec'd:

- /etc/keepalived is a bind mount of the lab's copy of the node's generated directory (byte for byte the
  build, or rewritten by --fast), plus a secrets.conf giving the site's auth secret a lab value;
- every executable a check runs (e.g. /usr/bin/killall for `killall -0 haproxy`, /usr/bin/test for a
  maintenance file) is replaced, through an overlay mount on its directory, by a stand-in script that
  recognises the generated command line: a script check passes unless the lab created its switch file,
  a maintenance-file check answers from the real file (the lab creates it in the lab copy, as an operator
  would touch it); each run is logged, which tells the lab exactly when a daemon has seen `fall` failures;
- systemctl, logger and sendmail are recorders, so notify.sh's calls never reach the host.

Interfaces go down by taking the node's port on the bridge down (carrier loss); a node goes down by
SIGKILL (keepalived's children too) and is then out of the observation (a dead node holds nothing), its
leftover VIPs flushed before it restarts.
"""
