"""The tumour-board web application and REST API (``nelm serve``); see :func:`create_app`."""
from .app import create_app

__all__ = ["create_app"]
