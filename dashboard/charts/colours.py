"""Colours the adverse-event charts and the Subject page's timeline share, so an AE looks the same
on both."""

# The app's blue: the enrolled line and inclusion bars, and the theme's primary colour
# (.streamlit/config.toml [theme] primaryColor), so widgets and charts agree.
PRIMARY_BLUE = "#1f77b4"

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

# Site risk flags (-2..2, either side of the study's rate): red beyond the outer threshold, amber
# beyond the inner one, green inside; a site not scored (too few days or subjects) is grey.
FLAG_LABELS: dict[int, str] = {
    -2: "Red (low)",
    -1: "Amber (low)",
    0: "Green",
    1: "Amber (high)",
    2: "Red (high)",
}
NOT_SCORED = "Not scored"
FLAG_COLOURS: dict[str, str] = {
    "Red (low)": "#b2182b",
    "Amber (low)": "#f4a582",
    "Green": "#4daf4a",
    "Amber (high)": "#fdae61",
    "Red (high)": "#d7191c",
    NOT_SCORED: UNKNOWN_COLOUR,
}
# The background of a flag cell in a table (|flag| 2, 1, 0).
FLAG_CELL_COLOURS: dict[int, str] = {2: "#f4c7c3", 1: "#fde2b8", 0: "#d9ead3"}
