"""Named analysis recipes (``--design``).

``mayo2011``: surgery versus intra-arterial therapy in propensity-matched patients, after
Mayo SC et al., Ann Surg Oncol 2011 (the comparison review 000 reports: 118 matched
patients, median overall survival 84.0 vs 38.9 months). Surgery = liver resection or
thermal ablation (the study's "resection ± ablation"); intra-arterial therapy = TAE, TACE,
DEB-TACE; every other treatment is excluded with that reason. The propensity model uses
the characteristics review 000 names as differing between the groups ("a higher burden of
hepatic disease, were more likely to have extrahepatic disease, and more often had NET from
an unknown primary") and the prognostic factors of the same group's surgical series (Mayo
2010: synchronous presentation, a functional tumour) with symptoms, which the study's
subgroups turn on. The subgroups of the published Figure 2B (> 25 % hepatic burden,
symptomatic and asymptomatic) are analysed within the matched pairs.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Design:
    id: str
    title: str
    treated: tuple[str, ...]
    control: tuple[str, ...]
    treated_label: str
    control_label: str
    propensity: tuple[str, ...]
    endpoint: str
    published_cohort: str | None
    citation: str
    subgroups: tuple[tuple[str, str], ...] = field(default_factory=tuple)   # (label, Polars SQL over the registry)
    sources: tuple[str, ...] = ()


DESIGNS: dict[str, Design] = {
    "mayo2011": Design(
        id="mayo2011",
        title="Surgery versus intra-arterial therapy, propensity-matched (after Mayo 2011)",
        treated=("liver_resection", "thermal_ablation"),
        control=("tae", "tace", "deb_tace"),
        treated_label="Surgery",
        control_label="Intra-arterial therapy",
        propensity=("liver.burden_percent", "derived.extrahepatic_disease", "primary.site:unknown_primary",
                    "liver.timing", "derived.hormonal_syndrome", "symptomatic"),
        endpoint="os",
        published_cohort="mayo2011_matched",
        citation="Mayo SC, de Jong MC, Bloomston M, et al. Surgery versus intra-arterial therapy for neuroendocrine "
                 "liver metastasis: a multicenter international analysis. Ann Surg Oncol 2011;18:3657-3665",
        subgroups=(("> 25 % hepatic burden, symptomatic", '"liver.burden_percent" > 25 AND symptomatic'),
                   ("> 25 % hepatic burden, asymptomatic", '"liver.burden_percent" > 25 AND NOT symptomatic')),
        sources=("mayo2011", "mayo2010", "mayo2012_review"),
    ),
}
