"""Imported by ``nelm serve``'s report fork server (:mod:`nelm.web.reportjob`) before it forks
any report job: :func:`nelm.report.warm` runs once there, so each job starts with WeasyPrint
imported, the evidence read and the templates compiled (about half a second less a report).
The module the jobs run (:mod:`nelm.web.reportjob`, which imports the web package and with it
the web application) is imported here too: a job forked from a fork server without it imported
it again itself when it unpickled its function, about 0.6 s of CPU a report. Last, the objects
made so far are frozen out of the garbage collector (``gc.freeze``): a job's collections then
skip them, and do not write to (and so copy) the pages it shares with the fork server.
A failure here is never fatal: a job then does the same work itself."""
from __future__ import annotations

import gc

try:
    from . import warm

    warm()
    from ..web import reportjob  # noqa: F401  # the jobs' own module, unpickled in each job
except Exception:  # noqa: BLE001, S110  # nosec B110 - an optimisation only; the job does it again
    pass
gc.collect()
gc.freeze()
