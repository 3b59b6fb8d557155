"""CSV export of a report: UTF-8 with a byte-order mark, so that Excel in French opens accents right.

With the ``;`` separator (what Excel expects in a French locale) decimals are written with a comma too; with ``,``
they keep the point.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from comptoir_common.errors import InvalidInput

SEPARATORS = {",": ",", "comma": ",", ";": ";", "semicolon": ";"}
BOM = "\ufeff"


def _cell(value: Any, kind: str, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if kind in ("hours", "percent") or isinstance(value, float):
        text = f"{float(value):.2f}" if kind == "hours" else f"{float(value):.1f}"
        return text.replace(".", ",") if decimal_comma else text
    return str(value)


def to_csv(report: dict[str, Any], separator: str = ",") -> dict[str, str]:
    """``{"filename", "content"}`` of ``report`` (as :func:`comptoir_reports.reports.get_report` returns it)."""
    delimiter = SEPARATORS.get(separator)
    if delimiter is None:
        raise InvalidInput("Séparateur invalide : virgule (comma) ou point-virgule (semicolon).")
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    columns = report["columns"]
    writer.writerow([column["label"] for column in columns])
    for row in report["rows"]:
        writer.writerow(
            [_cell(row.get(column["key"]), column["kind"], delimiter == ";") for column in columns]
        )
    filters = report["filters"]
    filename = f"comptoir-{report['key']}-{filters['start']}-{filters['end']}.csv"
    return {"filename": filename, "content": BOM + buffer.getvalue()}
