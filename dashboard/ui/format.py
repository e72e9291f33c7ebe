"""Number formatting shared by the pages."""


def percent(part: int, whole: int, digits: int = 0) -> str:
    """``"44%"``; a dash where the whole is zero."""
    return f"{100 * part / whole:.{digits}f}%" if whole else "–"


def count_of(part: int, whole: int | None) -> str:
    """``"20 / 20"`` against a target, or just the count where there is none."""
    return f"{part} / {whole}" if whole else f"{part}"
