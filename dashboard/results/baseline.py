"""Table 1's result frames: the columns that are not an arm or a site (screen failures and subjects
not allocated each get a column of their own, after the arms)."""

NOT_ALLOCATED_COLUMN = "Not allocated"
SCREEN_FAILURE_COLUMN = "Screen failure"
