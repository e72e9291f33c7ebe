"""The populations a subject falls in: the values of ``Subject.population`` and the groups every
count by population reports."""

# Subject.population values: the figure definitions of DESIGN.md, derived once at load time by
# dashboard.metrics.population.classify_subject so every query counts the same way.
SCREEN_FAILURE = "SCREEN FAILURE"
ENROLLED = "ENROLLED"
NOT_ASSIGNED = "NOT ASSIGNED"
IN_SCREENING = "IN SCREENING"
POPULATIONS = (SCREEN_FAILURE, ENROLLED, NOT_ASSIGNED, IN_SCREENING)
