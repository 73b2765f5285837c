"""The durable case store: every assessment of every case, with its input, output and
knowledge-base version, in SQLite (default) or PostgreSQL. See :class:`CaseStore`; the
hash chains that make changes behind its back visible are :mod:`.chain`'s."""
from .chain import BrokenChain, ChainReport, ChainUnavailable, verify_database
from .db import default_database_url, display_url, make_engine, migrate
from .sessions import SessionStore
from .repository import (AuditRecord, CaseNotFound, CasePage, CaseStore, CaseSummary, StaleVersion,
                         StoredVersion, VersionInfo, VersionNotFound)

__all__ = ["AuditRecord", "BrokenChain", "CaseNotFound", "CasePage", "CaseStore", "CaseSummary", "ChainReport",
           "ChainUnavailable", "SessionStore", "StaleVersion", "StoredVersion", "VersionInfo", "VersionNotFound", "default_database_url",
           "display_url", "make_engine", "migrate", "verify_database"]
