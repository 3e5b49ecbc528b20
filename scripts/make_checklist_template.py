"""Write checklists/template.xlsx: a small workbook showing every column and item kind.

    python scripts/make_checklist_template.py

The template is the export of checklists/examples/template.toml, so importing it gives
that checklist back (tests/test_xlsform.py checks this).
"""

from __future__ import annotations

from pathlib import Path

from bot.core.checklist import load_checklist
from bot.core.xlsform import export_workbook

ROOT = Path(__file__).resolve().parent.parent

HEADER = [
    "模板：每个 begin_group … end_group 为一个部分；type 列可填 compliance、confirm、text、yes_no、number、date、",
    "select_one 列表名、select_multiple 列表名、attachment。列说明见 checklists/README.md。",
    "Template: see checklists/README.md for every column.",
]


def main() -> None:
    checklist = load_checklist(ROOT / "checklists" / "examples" / "template.toml")
    export_workbook(checklist, ROOT / "checklists" / "template.xlsx", header=HEADER)
    print(ROOT / "checklists" / "template.xlsx")


if __name__ == "__main__":
    main()
