"""`zicha sample draw | list | show | result`: the "双随机、一公开" inspection sample."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from bot.cli.group import cli
from bot.cli.options import _local_time, _open_db, _open_existing_db, _settings, scope_option
from bot.core.scope import Scope


@cli.group("sample")
def sample_group() -> None:
    """The "双随机、一公开" inspection sample: draw it by field quotas, list and show
    samples, record what each inspection found.

    A draw is kept with its seed, quotas and the fingerprint of the pool it was drawn
    from, so it can be repeated and checked (--seed). Regulators see the sample of their
    scope with /sample in the bot, and record results there too.
    """


def _quota(values: tuple[str, ...]) -> list[tuple[str, int]] | None:
    if not values:
        return None
    from bot.core import fields as fields_registry
    from bot.core.sampling import OTHER

    out = []
    for value in values:
        name, sep, number = value.partition("=")
        field_id = OTHER if name.strip() == OTHER else fields_registry.resolve_field(name.strip())
        digits = number.strip()
        if not sep or field_id is None or not (digits.isascii() and digits.isdigit()):
            raise click.BadParameter(f"{value!r}: expected FIELD=NUMBER with a field id of checklists/fields.toml (or other)")
        out.append((field_id, int(digits)))
    return out


def _campaign(settings: object, campaign_id: str | None) -> object:
    from bot.cli.campaigns import campaign_runs

    runs = campaign_runs(settings, campaign_id)
    if not runs:
        raise click.ClickException("no campaign is open: say which with --campaign")
    if len(runs) > 1:
        raise click.ClickException("several campaigns are open: say which with --campaign")
    return runs[0][0]


@sample_group.command("draw")
@scope_option(default="national")
@click.option("--campaign", "campaign_id", default=None, help="The campaign (default: the deployment's).")
@click.option("--quota", "quotas", multiple=True, metavar="FIELD=N", help="A quota, in drawing order (repeat it); default: the campaign's [campaign.sample].")
@click.option("--seed", default=None, help="Repeat a draw: its seed (hex). Default: 128 new random bits.")
@click.option("--dry-run", is_flag=True, help="Show the draw; keep nothing.")
@click.option("--again", is_flag=True, help="Draw although a sample of this campaign and scope exists (both are kept).")
def draw_cmd(scope: Scope, campaign_id: str | None, quotas: tuple[str, ...], seed: str | None, dry_run: bool, again: bool) -> None:
    """Draw the inspection sample of a campaign in a scope, by field quotas.

    The pool is every institution of the scope the campaign covers. Quotas are drawn in
    order; an institution is drawn once; "other" draws from institutions working in a
    field no quota names. Fewer candidates than a quota: all of them, and the shortfall
    is said.
    """
    from bot.core.sampling import SampleError, check_seed
    from bot.services.sampling import AlreadyDrawn, draw_sample, preview_draw
    from storage.samples import institution_names

    settings = _settings()
    checklist = _campaign(settings, campaign_id)
    chosen = _quota(quotas)
    try:
        fixed = check_seed(seed) if seed is not None else None
        with (_open_existing_db(settings) if dry_run else _open_db(settings)) as db:
            if dry_run:
                result = preview_draw(db, checklist, scope, chosen, fixed)  # type: ignore[arg-type]
                sample_id = None
            else:
                sample, result = draw_sample(db, checklist, scope, drawn_by="cli", quotas=chosen, seed=fixed, again=again)  # type: ignore[arg-type]
                sample_id = sample.id
            names = institution_names(db, [p.institution_id for p in result.picks])
    except AlreadyDrawn as exc:
        raise click.ClickException(
            f"sample #{exc.sample.id} of this campaign and scope was drawn on {_local_time(exc.sample.drawn_at, settings)}; "
            "a draw is not repeated by accident (--again keeps both)"
        ) from None
    except SampleError as exc:
        raise click.ClickException(str(exc)) from None
    head = "Sample (dry run, not kept)" if sample_id is None else f"Sample #{sample_id}"
    click.echo(f"{head} of {checklist.campaign_key} for {scope.to_text()}: {len(result.picks)} institution(s) "  # type: ignore[attr-defined]
               f"from a pool of {result.pool_size}")  # fmt: skip
    click.echo(f"Seed: {result.seed}")
    click.echo(f"Pool fingerprint (SHA-256 of the USCCs, sorted): {result.pool_sha256}")
    for quota, number in result.quotas:
        click.echo(f"  {quota}: {len(result.drawn_for(quota))} of {number}")
    for quota, missing in result.shortfall:
        click.echo(f"  Shortfall: {quota} had {missing} candidate(s) too few")
    for pick in result.picks:
        click.echo(f"{pick.position:>4}. {pick.quota}\t{pick.uscc}\t{names.get(pick.institution_id, '')}")


@sample_group.command("list")
@click.option("--campaign", "campaign_id", default=None, help="Only this campaign's.")
def list_cmd(campaign_id: str | None) -> None:
    """Every sample drawn: id, campaign, scope, size, inspected, when and by whom."""
    from storage.samples import list_samples, picks_of

    settings = _settings()
    with _open_existing_db(settings) as db:
        samples = list_samples(db, campaign_id)
        if not samples:
            click.echo("No sample has been drawn.")
        for s in samples:
            picks = picks_of(db, s.id)
            inspected = sum(1 for p in picks if p.result is not None)
            click.echo(f"#{s.id}\t{s.campaign_id}\t{s.scope.to_text()}\t{len(picks)} drawn\t{inspected} inspected\t{_local_time(s.drawn_at, settings)}\t{s.drawn_by}")


def _sample_or_fail(db: object, sample_id: int) -> object:
    from storage.samples import get_sample

    sample = get_sample(db, sample_id)  # type: ignore[arg-type]
    if sample is None:
        raise click.ClickException(f"no sample #{sample_id} (zicha sample list)")
    return sample


SAMPLE_ID = click.IntRange(1, 2**63 - 1)


@sample_group.command("show")
@click.argument("sample_id", type=SAMPLE_ID)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write its workbook (FILE.xlsx).")
def show_cmd(sample_id: int, output: Path | None) -> None:
    """One sample: what repeats its draw, each institution drawn and its result."""
    from bot.reports.sample_workbook import result_label, write_sample_workbook
    from storage.samples import picks_of

    if output is not None and output.suffix.lower() != ".xlsx":
        raise click.BadParameter("the workbook's name must end in .xlsx", param_hint="--output")
    settings = _settings()
    with _open_existing_db(settings) as db:
        sample = _sample_or_fail(db, sample_id)
        picks = picks_of(db, sample_id)
    click.echo(f"Sample #{sample.id} of {sample.campaign_id} for {sample.scope.to_text()}, drawn {_local_time(sample.drawn_at, settings)} by {sample.drawn_by}")  # type: ignore[attr-defined]
    click.echo(f"Seed: {sample.seed}  Pool: {sample.pool_size} ({sample.pool_sha256})")  # type: ignore[attr-defined]
    for p in picks:
        result = result_label(p.result) if p.result else "not inspected yet"
        click.echo(f"{p.position:>4}. {p.quota}\t{p.uscc}\t{p.name}\t{result}" + (f"\t{p.inspected_on}" if p.inspected_on else ""))
    if output is not None:
        try:
            write_sample_workbook(sample, picks, settings.tz, output)  # type: ignore[arg-type]
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
        click.echo(f"Wrote {output}")


@sample_group.command("result")
@click.argument("sample_id", type=SAMPLE_ID)
@click.argument("uscc")
@click.option(
    "--result", "result_name", required=True,
    type=click.Choice(["no_problem", "rectify", "case", "not_operating"]),
    help="no_problem 未发现问题, rectify 责令整改, case 立案查处, not_operating 已注销、停业或查无下落.",
)  # fmt: skip
@click.option("--findings", default=None, help="What was found and decided (at most 1,000 characters).")
@click.option("--date", "inspected_on", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="The inspection's date (default: today).")
def result_cmd(sample_id: int, uscc: str, result_name: str, findings: str | None, inspected_on: dt.datetime | None) -> None:
    """Record what the inspection of one drawn institution (by USCC) found; a second
    record replaces the first."""
    from bot.core.interview import InvalidInput
    from bot.core.sampling import MAX_FINDINGS, InspectionResult
    from bot.services.sampling import record
    from storage.institutions import get_institution_by_uscc

    settings = _settings()
    with _open_existing_db(settings) as db:
        sample = _sample_or_fail(db, sample_id)
        institution = get_institution_by_uscc(db, uscc.strip().upper())
        day = inspected_on.date() if inspected_on is not None else dt.datetime.now(settings.tz).date()
        try:
            done = institution is not None and record(
                db, sample, institution.id, InspectionResult(result_name), findings=findings, inspected_on=day, by="cli",  # type: ignore[arg-type]
            )  # fmt: skip
        except InvalidInput as exc:
            said = f"at most {MAX_FINDINGS} characters" if exc.code == "too_long" else "give some text"
            raise click.ClickException(f"--findings: {said}") from None
    if not done:
        raise click.ClickException(f"{uscc} is not in sample #{sample_id}")
    click.echo(f"Recorded for {uscc} in sample #{sample_id}: {result_name}, {day.isoformat()}")
