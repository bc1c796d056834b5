"""keepalived's real-server health checkers (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK).

- spec.py: immutable CheckerSpec values; fromconf.py builds them from the kaconf model (`checker_specs`).
- state.py: the pure per-real-server checker state (keepalived's timing; results in, changes out).
- engine.py: TCP_CHECK and plain HTTP_GET as callbacks on one epoll set; http.py: the HTTP request and
  response reader both probe paths share; probes.py: one-off probes, SSL_GET and MISC_CHECK.
- runner.py: the asyncio shell (one timer for all checkers, bounded concurrent probes).
- process.py (in `hacc run`) and worker.py (the child): the runner in its own process; wire.py frames.
"""
