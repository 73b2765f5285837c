"""Cohort analytics (issue 23): a centre's own outcomes, beside the literature.

One concept per module:

- :mod:`.registry`    reading a registry: the patient columns through ``nelm screen``'s reader,
                      validator and engine (derived variables never re-coded), the outcome
                      columns (treatment, follow-up, event, progression), bad rows named;
- :mod:`.covariates`  covariates by name and the design matrix (unknown never coded);
- :mod:`.table1`      characteristics by group with standardized mean differences;
- :mod:`.survival`    Kaplan–Meier summaries and the log-rank test (lifelines);
- :mod:`.cox`         Cox proportional hazards with the Schoenfeld check (lifelines);
- :mod:`.propensity`  propensity score (statsmodels), caliper matching, balance;
- :mod:`.literature`  the published reconstructed curves that apply to a group (nelm.outcomes);
- :mod:`.designs`     named recipes (``--design mayo2011``);
- :mod:`.analysis`    the whole analysis as one JSON-ready report, with its STROBE-style flow;
- :mod:`.plots`       the figures (matplotlib, numbers at risk, grey-scale safe);
- :mod:`.report`      the report as HTML and text; :mod:`.cli` the ``nelm cohort`` command.

The synthetic registry these are tested on is ``nelm synth --registry``
(:func:`nelm.screen.synth.synthesize_registry`).
"""
