#!/bin/sh
PYTHONPATH=/work/wt/board/src exec /work/main/.venv/bin/python -m nelm.cli "$@"
