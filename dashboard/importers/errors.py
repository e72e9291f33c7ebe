"""What an import reports: a fatal problem (nothing is written) or warnings (stored on the DataCut)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """A problem in the input, located as precisely as the input allows."""

    message: str
    file: str | None = None
    record: int | None = None  # 1-based record number within the file (the header is not counted)
    column: str | None = None
    row: int | None = None  # 1-based row of a table file as a spreadsheet shows it: the header is 1

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                self.file,
                f"record {self.record}" if self.record is not None else None,
                f"row {self.row}" if self.row is not None else None,
                f"column {self.column}" if self.column else None,
            )
            if part
        )
        return f"{where}: {self.message}" if where else self.message


class ImportFailure(Exception):
    """A fatal problem: the import stops and writes no study data."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def fail(
    message: str,
    *,
    file: str | None = None,
    record: int | None = None,
    column: str | None = None,
    row: int | None = None,
) -> ImportFailure:
    """An ImportFailure to raise: ``raise fail("...", file=..., record=..., column=...)``."""
    return ImportFailure(Problem(message, file, record, column, row))
