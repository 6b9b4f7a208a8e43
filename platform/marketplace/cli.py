"""The `marketplace` command: serve, worker, beat, db, keys, mail, demo, payouts, ledger, growth."""

from __future__ import annotations

import errno
import os
import secrets
import socket
import sys
import warnings

import typer
from rich.console import Console
from sqlalchemy import func, select

from kernel import auth, people
from kernel.auth import ApiKey, Role
from kernel.db import session_scope
from kernel.errors import AppError
from kernel.runtime import Runtime
from kernel.settings import get_settings
from marketplace import bootstrap, growth_cli, migrate
from marketplace.ledger_report import run_ledger_audit
from marketplace.subjects import subject_exists
from payouts import cli as payouts_cli

app = typer.Typer(help="Many-to-many marketplace platform.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry journal.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(ledger_app, name="ledger")
app.add_typer(payouts_cli.app, name="payouts")
app.add_typer(growth_cli.app, name="growth")
console = Console()
# A placeholder: invite your own address to the operator team as admin, then remove this person.
FIRST_ADMIN_EMAIL = "admin@marketplace.example.com"
DEMO_STOREFRONT = "makers-guild-demo"

@app.callback()
def _wire() -> None:
    # The CLI's composition root, before any command: this process's Celery app (every task),
    # which the payout commands send through (in-process when no broker is configured).
    bootstrap.process_celery(get_settings())


# The demo and the first-start seeding drive the API in-process through Starlette's TestClient,
# which warns that it will move to another HTTP client; nothing a user of the CLI can act on.
warnings.filterwarnings("ignore", message=".*starlette.testclient.*")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Bring the schema in DATABASE_URL up to date."""
    settings = get_settings()
    migrate.upgrade(settings.database_url, revision)
    console.print(f"[green]schema at {revision}[/green] ({settings.database_url.split('@')[-1]})")


@keys_app.command("create")
def keys_create(
    role: Role = typer.Option(Role.OPERATOR, help="operator, seller or affiliate"),
    subject_id: str | None = typer.Option(None, help="the seller or affiliate id the key acts for"),
    name: str = typer.Option("cli", help="a label to recognise the key by"),
) -> None:
    """Issue an API key (bootstrap the first operator key with this). Shown once."""
    import uuid

    runtime = Runtime(get_settings())
    subject = uuid.UUID(subject_id) if subject_id else None
    try:
        with session_scope(runtime.sessions) as session:
            auth.check_key_subject(session, role, subject, subject_exists)
            issued = auth.issue_key(session, role, subject, name)
    except AppError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(2) from None
    console.print(f"{role.value} key (shown once): [bold]{issued.key}[/bold]")


def _bootstrap_embedded(runtime: Runtime, base_url: str) -> None:
    """First start on the embedded default: an operator key and an operator admin person (who logs
    in with email and password) to explore with, and a little demo data (sellers, products,
    programs, affiliates, two storefronts; each seller and affiliate with an owner who logs in)."""
    with session_scope(runtime.sessions) as session:
        if session.scalar(select(func.count()).select_from(ApiKey)):
            console.print("Operator key: printed at first start; make another with "
                          "[bold]marketplace keys create --role operator[/bold]")
            console.print(f"Console: {base_url}/console   storefront: {base_url}/s/{DEMO_STOREFRONT}", highlight=False)
            return
        issued = auth.issue_key(session, Role.OPERATOR, None, "bootstrap")
        admin_password = secrets.token_urlsafe(12)
        admin = people.ensure_operator_admin(session, FIRST_ADMIN_EMAIL, "Operator admin", admin_password)
    from fastapi.testclient import TestClient

    from marketplace.app import create_app
    from marketplace.demo import HISTORY_DAYS, seed_order_history, seed_storefront_demo, story_time
    from orders.tasks import release_matured

    # Shown before the seeding: the key is already stored, and a seeding failure must not hide it.
    console.print(f"Operator API key (shown once): [bold]{issued.key}[/bold]")
    if admin is not None:
        console.print(f"Operator admin (shown once): log in at {base_url}/login as [bold]{FIRST_ADMIN_EMAIL}[/bold] "
                      f"with password [bold]{admin_password}[/bold] (or POST /v1/sessions, or POST /v1/auth/api-keys "
                      "for a key)", highlight=False, soft_wrap=True)
    demo_password = secrets.token_urlsafe(12)
    with TestClient(create_app(runtime=runtime)) as client:
        with story_time(days_ago=HISTORY_DAYS):
            cast = seed_storefront_demo(client, {"Authorization": f"Bearer {issued.key}"}, password=demo_password)
            orders = seed_order_history(cast)
        release_matured()  # at real time: the history's holding periods have passed
    console.print("Demo data: storefronts [bold]makers-guild-demo[/bold] and [bold]outdoor-alliance-demo[/bold] "
                  "(GET /v1/storefronts/makers-guild-demo/products), and "
                  f"{orders} orders delivered {HISTORY_DAYS} days ago whose earnings are ready to pay out "
                  "(POST /v1/payout-batches)")
    console.print(f"Demo sellers and affiliates (shown once): log in at {base_url}/login as "
                  f"[bold]{cast.email('Lumen Software')}[/bold] (a seller) or [bold]{cast.email('Makers Guild')}"
                  f"[/bold] (an affiliate), each with password [bold]{demo_password}[/bold]",
                  highlight=False, soft_wrap=True)
    console.print(f"Console: {base_url}/console   storefront: {base_url}/s/{DEMO_STOREFRONT}", highlight=False)


@app.command()
def mail(
    show_all: bool = typer.Option(False, "--all", help="sent messages too, not only those waiting"),
    limit: int = typer.Option(20, min=1, max=500, help="newest first"),
    send: bool = typer.Option(False, "--send", help="try to send what is waiting now (needs SMTP_HOST)"),
) -> None:
    """The email outbox: invitations and other mail, newest first. Without SMTP configured mail
    waits here: open an invitation's link (or run its curl command) to accept it locally."""
    from kernel import mail as outbox

    runtime = Runtime(get_settings())
    with session_scope(runtime.sessions) as session:
        rows = outbox.list_outbox(session, unsent_only=not show_all, limit=limit)
        ids = [row.id for row in rows if row.sent_at is None]
        if not rows:
            console.print("The outbox is empty." if show_all else "No mail is waiting (--all shows sent mail).")
        for row in rows:
            state = f"sent {row.sent_at:%Y-%m-%d %H:%M}" if row.sent_at else (
                f"waiting ({row.attempts} attempt(s), {row.last_error})" if row.attempts else "waiting")
            console.print(f"[bold]{row.subject}[/bold]\nTo: {row.to_address}   {row.created_at:%Y-%m-%d %H:%M} UTC"
                          f"   {state}", highlight=False)
            console.print(row.body, highlight=False, markup=False, soft_wrap=True)  # links stay whole
    if send:
        if not outbox.smtp_configured(runtime.settings):
            console.print("[red]SMTP_HOST is not set: mail stays in the outbox.[/red]")
            raise typer.Exit(2)
        sent = 0
        for mail_id in ids:
            with session_scope(runtime.sessions) as session:
                sent += outbox.send_one(runtime.settings, session, mail_id)[0] == "sent"
        console.print(f"sent {sent} of {len(ids)} waiting message(s)")


@ledger_app.command("audit")
def ledger_audit() -> None:
    """Recompute every balance from the journal and check every invariant; exit 1 on a finding."""
    raise typer.Exit(run_ledger_audit(Runtime(get_settings())))


@app.command()
def demo() -> None:
    """Run the many-to-many story through the API on this platform (DATABASE_URL, or the embedded
    default): onboarding, storefronts, orders, fulfilment, a refund, a payout batch, the audit."""
    from marketplace import demo as story

    # Something to show a customer: the story's own lines and tables, not the platform's logs
    # (request logs, Celery's task lines); errors still show.
    settings = get_settings().model_copy(update={"log_level": "ERROR"})
    if settings.is_sqlite:
        migrate.upgrade(settings.database_url)
    raise typer.Exit(story.run_story(Runtime(settings), console))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    workers: int = typer.Option(1, help="server processes (PostgreSQL only; SQLite serves from one)"),
) -> None:
    """Run the HTTP API (Ctrl-C stops it). On the embedded SQLite default it migrates the schema first."""
    import uvicorn

    _require_free_port(host, port)
    settings = get_settings()
    if settings.is_sqlite:
        migrate.upgrade(settings.database_url)
        workers = 1
    base_url = f"http://{host}:{port}"
    if settings.is_sqlite:
        _bootstrap_embedded(Runtime(settings), base_url)
    console.print(f"Pages: {base_url}/   API docs: {base_url}/docs   health: {base_url}/healthz", highlight=False)
    uvicorn.run(
        "marketplace.app:create_app", factory=True, host=host, port=port, workers=workers,
        log_level="warning", access_log=False,
        # The app logs one line per request itself, and decides who the client is from
        # X-Forwarded-For only for settings.trusted_proxies (kernel.client): uvicorn must not
        # rewrite the client address from a header any local process can send.
        proxy_headers=False,
        # With several workers uvicorn kills a worker that does not answer its health ping within
        # this many seconds (5 by default), and a worker importing the app on a busy machine takes
        # longer: it was killed and restarted in a loop, and the server never came up.
        timeout_worker_healthcheck=60,
    )


@app.command()
def worker(
    concurrency: int = typer.Option(2),
    queues: str = typer.Option("celery"),
) -> None:
    """Run a Celery worker (needs CELERY_BROKER_URL or REDIS_URL)."""
    _require_broker()
    _become([
        "-m", "celery", "-A", "marketplace.worker", "worker",
        f"--concurrency={concurrency}", f"--queues={queues}", "--loglevel=INFO",
    ])


@app.command()
def beat() -> None:
    """Run Celery beat: the schedule (payout batches, click flush, holding periods)."""
    _require_broker()
    _become(["-m", "celery", "-A", "marketplace.worker", "beat", "--loglevel=INFO"])


def _become(python_args: list[str]) -> None:
    """Replace this process with the given Python command (Celery), so a supervisor's signals
    (SIGTERM: warm shutdown) reach Celery itself and nothing is left running when it stops."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *python_args])


def _require_free_port(host: str, port: int) -> None:
    """Say which port is busy and what to do, before anything else starts (uvicorn alone ends with
    a bare `[Errno 98] ... address already in use`). Bound the way uvicorn binds (SO_REUSEADDR), so
    a port that only has connections closing is not called busy."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
            console.print(f"[red]Port {port} on {host} {reason}[/red] (another `marketplace serve`?). Stop that "
                          f"one (Ctrl-C in its terminal), or serve on another port: "
                          f"[bold]marketplace serve --port {port + 1}[/bold]")
            raise typer.Exit(2) from None


def _require_broker() -> None:
    if get_settings().tasks_run_in_process:
        console.print("[red]No broker configured: set REDIS_URL or CELERY_BROKER_URL.[/red] "
                      "Without one, tasks already run inside `marketplace serve`.")
        raise typer.Exit(2)


if __name__ == "__main__":
    app()
