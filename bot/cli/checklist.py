"""`zicha checklist validate|show|import|export`: checklist files and their spreadsheet form."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bot.cli.group import cli
from bot.cli.options import (
    _settings,
)


@cli.group()
def checklist() -> None:
    """Checklist files (checklists/*.toml): validate them, print their outline, and convert
    them to and from a spreadsheet that content editors can fill in.

    The file format is described in checklists/README.md."""


@checklist.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def checklist_validate(files: tuple[Path, ...]) -> None:
    """Check checklist FILES; report the file, item and reason of the first problem in each.

    A file that loads is shown with its id, version and number of sections and items. Exit
    status 0 when every file is valid, 1 otherwise, e.g.:

    \b
      ✗ mini.toml: item 'bad-01': unknown key 'knd' (did you mean 'kind'?)
    """
    from bot.core.checklist import ChecklistError, load_checklist

    failed = False
    for path in files:
        try:
            loaded = load_checklist(path)
        except ChecklistError as exc:
            click.echo(f"✗ {exc}", err=True)
            failed = True
        else:
            click.echo(f"✓ {path}: {loaded.id} {loaded.version}, {len(loaded.sections)} sections, {len(loaded.items)} items")
    if failed:
        sys.exit(1)


@checklist.command("show")
@click.argument("checklist_id")
@click.option("--locale", type=click.Choice(["zh_CN", "en"]), default=None, help="Language of the outline.")
@click.option("--field", "fields", multiple=True, help="Only items for an institution in this field (repeatable).")
def checklist_show(checklist_id: str, locale: str | None, fields: tuple[str, ...]) -> None:
    """Print the outline of the shipped checklist CHECKLIST_ID (or a checklist file)."""
    from bot.core.checklist import ChecklistError, load_checklist, load_checklists
    from bot.resources import data_dir

    locale = locale or _settings().zicha_locale
    try:
        if Path(checklist_id).is_file():
            loaded = load_checklist(checklist_id)
        else:
            available = load_checklists(data_dir("checklists"))
            if checklist_id not in available:
                raise click.ClickException(f"No checklist {checklist_id!r}. Available: {', '.join(sorted(available))}")
            loaded = available[checklist_id]
    except ChecklistError as exc:
        raise click.ClickException(str(exc)) from None
    items = loaded.applicable_items(fields) if fields else list(loaded.items)
    wanted = {i.id for i in items}
    click.echo(f"{loaded.title.get(locale)}  [{loaded.id} {loaded.version}, {len(items)} items]")
    number = 0
    for section in loaded.sections:
        section_items = [i for i in section.items if i.id in wanted]
        if not section_items:
            continue
        click.echo(f"\n{section.title.get(locale)}")
        for item in section_items:
            number += 1
            scope = f"  ({', '.join(sorted(item.fields))})" if item.fields else ""
            click.echo(f"  {number:>2}. [{item.id}] {item.text.get(locale)}{scope}")


@checklist.command("import")
@click.argument("table", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the TOML (default: ./<checklist id>.toml).")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
def checklist_import(table: Path, output: Path | None, force: bool) -> None:
    """Convert an XLSForm-like workbook into a checklist file and validate it.

    Every problem is listed with its sheet, row and column; nothing is written unless the
    whole workbook is valid."""
    from bot.core.xlsform import WorkbookError, import_workbook

    try:
        text, loaded = import_workbook(table)
    except WorkbookError as exc:
        click.echo(f"{table}: {len(exc.problems)} problem(s); nothing was written.", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    target = output or Path(f"{loaded.id}.toml")
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; pass --force to replace it")
    target.write_text(text, encoding="utf-8")
    click.echo(f"{target}: {loaded.id} {loaded.version}, {len(loaded.sections)} sections, {len(loaded.items)} items, valid.")


@checklist.command("export")
@click.argument("checklist_id")
@click.argument("table", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing TABLE.")
def checklist_export(checklist_id: str, table: Path, force: bool) -> None:
    """Write CHECKLIST_ID (a shipped id or a .toml path) as the workbook TABLE (.xlsx).

    `zicha checklist import TABLE` reads the workbook back to the same checklist."""
    from bot.core.checklist import ChecklistError, load_checklist, load_checklists
    from bot.core.xlsform import export_workbook
    from bot.resources import data_dir

    if table.suffix.lower() != ".xlsx":  # `export x.toml x.toml` would put a workbook where the checklist was
        raise click.ClickException(f"{table}: the workbook's name must end in .xlsx")
    if table.exists() and not force:
        raise click.ClickException(f"{table} exists; pass --force to replace it")

    try:
        if checklist_id.endswith(".toml"):
            loaded = load_checklist(checklist_id)
        else:
            available = load_checklists(data_dir("checklists"))
            if checklist_id not in available:
                raise click.ClickException(f"No checklist {checklist_id!r} (available: {', '.join(sorted(available))})")
            loaded = available[checklist_id]
    except ChecklistError as exc:
        raise click.ClickException(str(exc)) from None
    header = [line[1:].strip() for line in Path(loaded.path).read_text(encoding="utf-8-sig").splitlines()
              if line.startswith("#")][:12]  # fmt: skip
    try:
        export_workbook(loaded, table, header=[h for h in header if not h.startswith("Generated by")])
    except OSError as exc:  # no such folder, no permission, a full disk
        raise click.ClickException(f"cannot write {table}: {exc.strerror or exc}") from None
    click.echo(f"{table}: {loaded.id} {loaded.version}, {len(loaded.items)} items.")
