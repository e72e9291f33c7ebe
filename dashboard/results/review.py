"""The words of review (issue #20): who reviews, what can be reviewed, the states a record and a
query can be in. Plain values, shared by the log's writer (``dashboard.review``), its readers
(``queries.review``, ``metrics.review``), the pages, the pack and the command line."""

# The roles a review mark is made in: each keeps its own marks (a medical monitor's review of an
# SAE is not the CRA's source check of it). Site users make no marks; they answer queries.
MEDICAL_MONITOR = "medical-monitor"
CRA = "cra"
DATA_MANAGER = "data-manager"
REVIEW_ROLES = (MEDICAL_MONITOR, CRA, DATA_MANAGER)
SITE = "site"  # the role a site user writes in (answers to queries addressed to the site)
ROLE_NAMES = {
    MEDICAL_MONITOR: "Medical monitor",
    CRA: "Monitor (CRA)",
    DATA_MANAGER: "Data manager",
    SITE: "Site",
}

# What can be reviewed, by its CutChange entity name, and the page that lists it.
ENTITIES = {
    "subject": "subject",
    "ae": "adverse event",
    "ie": "eligibility finding",
    "ds": "disposition",
}
PAGE_OF_ENTITY = {
    "subject": "subject",
    "ae": "adverse-events",
    "ie": "screen-failures",
    "ds": "subject",
}

# Log rows (ReviewEvent.kind): a mark and its withdrawal; a query and what follows it.
REVIEWED = "reviewed"
UNREVIEWED = "unreviewed"
MARK_KINDS = (REVIEWED, UNREVIEWED)
QUERY = "query"
ANSWER = "answer"
CLOSE = "close"
REOPEN = "reopen"
MESSAGE_KINDS = (QUERY, ANSWER, CLOSE, REOPEN)

# A record's state for one role, read from the log and the record's own history: reviewed in the
# version it has now; reviewed, then changed by a later cut; never reviewed (or the mark withdrawn).
STATE_REVIEWED = "reviewed"
STATE_CHANGED = "changed since review"
STATE_UNREVIEWED = "unreviewed"
RECORD_STATES = (STATE_UNREVIEWED, STATE_CHANGED, STATE_REVIEWED)
# What "needs review" counts: everything not reviewed in its present version.
NEEDS_REVIEW = (STATE_UNREVIEWED, STATE_CHANGED)

# Who a query is addressed to, and the states a query is in: the latest message decides.
AUDIENCES = {SITE: "Site", "data-management": "Data management", MEDICAL_MONITOR: "Medical monitor"}
OPEN = "open"
ANSWERED = "answered"
CLOSED = "closed"
QUERY_STATES = (OPEN, ANSWERED, CLOSED)
STATE_AFTER = {QUERY: OPEN, REOPEN: OPEN, ANSWER: ANSWERED, CLOSE: CLOSED}

# What a blinded viewer reads in place of a message an unblinded reviewer wrote in a blinded
# study (the text may name an arm).
HIDDEN_TEXT = "(written by an unblinded reviewer: shown to unblinded viewers only)"
