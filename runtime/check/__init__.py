"""keepalived's real-server health checkers (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK).

- spec.py: immutable CheckerSpec values from the kaconf model (`checker_specs(rs, vs)`).
- state.py: the pure per-real-server checker state (keepalived's timing; results in, changes out).
- probes.py: one asyncio probe per kind (no state).
- runner.py: the asyncio shell (one timer for all checkers, bounded concurrent probes).
"""
