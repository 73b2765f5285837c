"""Imported by ``nelm serve``'s report fork server (:mod:`nelm.web.reportjob`) before it forks
any report job: :func:`nelm.report.warm` runs once there, so each job starts with WeasyPrint
imported, the evidence read and the templates compiled (about half a second less a report).
A failure here is never fatal: a job then does the same work itself."""
from __future__ import annotations

try:
    from . import warm

    warm()
except Exception:  # noqa: BLE001, S110  # nosec B110 - an optimisation only; the job does it again
    pass
