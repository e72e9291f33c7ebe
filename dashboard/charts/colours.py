"""Colours the adverse-event charts and the Subject page's timeline share, so an AE looks the same
on both."""

NO_AE_COLOUR = "#e8e8e8"
UNKNOWN_COLOUR = "#a0a0a0"
# Colours by level, mildest first (the legend's order); "No AE" and "Unknown" are greys.
LEVEL_COLOURS: dict[str, dict[str, str]] = {
    "severity": {"Mild": "#fdd49e", "Moderate": "#fc8d59", "Severe": "#b30000"},
    "grade": {
        "Grade 1": "#fdd49e",
        "Grade 2": "#fdbb84",
        "Grade 3": "#fc8d59",
        "Grade 4": "#e34a33",
        "Grade 5": "#7f0000",
    },
    "seriousness": {"Not serious": "#9ecae1", "Serious": "#cb181d"},
    "relationship": {"Not related": "#9ecae1", "Related": "#e6550d"},
}
