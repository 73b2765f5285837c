"""Registry screening: the knowledge base over whole tables (issue 12).

One concept per module:

- :mod:`.layout`   reading CSV, Parquet and JSON Lines into one column layout (the
                   contract's dotted field paths; lists as list columns);
- :mod:`.validate` the patient model's refusals, row by row, without building a
                   pydantic object per row (each model's coupled fields are validated
                   once per distinct combination);
- :mod:`.flat`     the engine's flat view (:func:`nelm.patient.flatten`) column-wise;
- :mod:`.leading`  the plan's leading option column-wise from the pathway definitions;
- :mod:`.columns`  the output columns, named like the assessment's own paths;
- :mod:`.run`      ``nelm screen``: batches, progress, output, invalid-row report;
- :mod:`.summary`  counts per criterion status and verdict, and their chart;
- :mod:`.sql`      the same rules as a ``CREATE VIEW`` (sqlglot) for databases;
- :mod:`.synth`    synthetic patients from the reviews' marginal distributions.

Everything here is an adapter over :func:`nelm.engine.evaluate_frame` and the knowledge
base: no rule is written twice.
"""
