"""Derive `src/openphm/finance/data/hrg_costs.csv` from NHS England's National Cost Collection 2023/24.

The input is the export of the 2023/24 National Schedule of NHS Costs summary (one row per department
and currency: activity, unit cost, total cost), as kept at `inst/extdata/ncc_2023_24.csv` in the public
repository NICE-Data-and-Analytics/COSTmos (commit eef429d838aaff32c6865890f9b68faf52e07a1f). NHS England
publishes the schedule under the Open Government Licence.

Kept: the departments the person record costs spells in (elective, day case, non-elective long and
short stay, regular day or night admissions), renal dialysis sessions and critical care bed days.
Rows without activity or cost are dropped. Run:

    python scripts/derive_hrg_costs.py ncc_2023_24.csv > src/openphm/finance/data/hrg_costs.csv
"""

from __future__ import annotations

import csv
import sys

DEPARTMENTS = {
    "Elective Inpatients": "elective",
    "Daycase": "day_case",
    "Non-Elective Inpatient - Long Stay": "non_elective_long_stay",
    "Non-Elective Inpatient - Short Stay": "non_elective_short_stay",
    "Regular Day or Night Admissions": "regular_day_attender",
    "Renal Dialysis": "renal_dialysis",
    "Critical care": "critical_care",
}


def main(path: str) -> None:
    """Write the kept rows to standard output, sorted by department and HRG."""
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            department = DEPARTMENTS.get(row["Service Code"].strip())
            try:
                activity, unit_cost = float(row["Activity"]), float(row["Unit cost"])
            except ValueError:
                continue
            if department and activity > 0 and unit_cost > 0:
                rows.append((department, row["Dept or Currency Code"].strip(), round(activity), round(unit_cost, 2)))
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["department", "hrg", "activity", "unit_cost"])
    out.writerows(sorted(rows))


if __name__ == "__main__":
    main(sys.argv[1])
