"""Commands of the service: `serve`, `users`, `policies` (steward's admin), `audit ...`."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
from rich.table import Table

from cellcensus.console import console, err_console, user_errors
from cellcensus.errors import CellcensusError
from cellcensus.holder.api.schemas import PolicyIn
from cellcensus.holder.api.settings import ServiceSettings
from cellcensus.holder.api.tokens import revoke_all
from cellcensus.holder.api.users import MIN_PASSWORD, Role, User, Users, check_scopes
from cellcensus.holder.disclosure import read_policy_file
from cellcensus.holder.enclave.audit import AuditLog
from cellcensus.holder.enclave.diagnostics import JobDiagnostics, committed
from cellcensus.holder.enclave.policies import DEFAULT_KEY, ReleasePolicy
from cellcensus.holder.enclave.state import State, open_state
from cellcensus.holder.engines import check_spark_starts
from cellcensus.holder.store.layout import require_store

PASSWORD_ENV = "CELLCENSUS_PASSWORD"
MAX_PORT = 65535

StoreOption = Annotated[Path, typer.Option(help="The holder's store folder.")]
DatabaseOption = Annotated[
    str | None,
    typer.Option(help="State database URL (default: SQLite in STORE/enclave/state.db)."),
]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(help=f"Read the password from a file (else ${PASSWORD_ENV}, else a prompt)."),
]


def _state(store: Path, database_url: str | None) -> State:
    require_store(store)
    settings = ServiceSettings.from_env(store=store, database_url=database_url)
    return open_state(settings.resolved_database_url)


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            given = password_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CellcensusError(f"cannot read --password-file {password_file}: {error}") from None
        return _long_enough(given, source=f"--password-file {password_file}")
    if os.environ.get(PASSWORD_ENV):
        return _long_enough(os.environ[PASSWORD_ENV], source=f"${PASSWORD_ENV}")
    try:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    except typer.Abort:  # the input ended (a script, no terminal) or the user pressed Ctrl-C
        raise CellcensusError(
            f"no password given: type it at the prompt, or give --password-file FILE or set "
            f"${PASSWORD_ENV}"
        ) from None


def _long_enough(password: str, *, source: str) -> str:
    """`password`, refused with its source named when short: a forgotten variable is unseen."""
    if len(password) < MIN_PASSWORD:
        raise CellcensusError(
            f"the password from {source} has {len(password)} characters; a password needs at "
            f"least {MIN_PASSWORD}: set a longer one there"
        )
    return password


def check_port_free(host: str, port: int) -> None:
    """Refuse an address the service could not listen on, before it says where it listens.

    Raises:
        CellcensusError: Naming the address and what to do (uvicorn would log its own error
            after the service's address was printed, and exit 3).
    """
    if not 1 <= port <= MAX_PORT:
        # Port 0 would listen on a port the system picks, not the one the service prints.
        raise CellcensusError(f"--port {port}: give a port from 1 to {MAX_PORT}, e.g. 8000")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CellcensusError(
                    f"port {port} on {host} is in use (another program, or a service already "
                    f"running): give another --port, e.g. --port {port + 1}"
                ) from None
            raise CellcensusError(
                f"cannot listen on {host} port {port}: {error.strerror or error}; give "
                "another --host or --port"
            ) from None


def serve(
    store: StoreOption,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: DatabaseOption = None,
    workers: Annotated[int | None, typer.Option(help="Jobs computed at once.")] = None,
    jwt_key_file: Annotated[
        Path | None, typer.Option(help="JWT signing key file (mode 0600).")
    ] = None,
) -> None:
    """Start the safe environment's HTTP service over a store."""
    import uvicorn

    from cellcensus.holder.api.app import create_app

    require_store(store)
    check_port_free(host, port)
    settings = ServiceSettings.from_env(
        store=store, database_url=database_url, workers=workers, jwt_key_file=jwt_key_file
    )
    if settings.engine == "spark":
        with console.status("starting Spark once, as the job workers will"):
            check_spark_starts()
    app = create_app(settings)
    console.print(f"cellcensus service on http://{host}:{port} (store {store})")
    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: any client of a loopback
    # service (a tunnel, a proxy passing the header on) could then name itself per request
    # and escape the login limits. Only the proxies the operator names are believed.
    proxies = settings.forwarded_allow_ips
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )


def add_user(
    username: Annotated[str, typer.Argument(help="New user name.")],
    store: StoreOption,
    role: Annotated[Role, typer.Option(help="analyst, steward or auditor.")] = Role.ANALYST,
    password_file: PasswordFileOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Register a user (the first steward is created this way)."""
    state = _state(store, database_url)
    user = Users(state).add(
        username=username, role=role, password=_password(password_file), actor="cli"
    )
    console.print(f"created {user.role.value} {user.username}")


def grant(
    username: Annotated[str, typer.Argument(help="User name.")],
    scopes: Annotated[list[str], typer.Argument(help="ALGORITHM:LEVEL:PERIOD scopes.")],
    store: StoreOption,
    database_url: DatabaseOption = None,
) -> None:
    """Replace a user's scopes, e.g. usual_residence:municipality:2011-03-01..2011-03-31.

    Name every scope the user keeps: those left out are taken away.
    """
    from cellcensus.holder.enclave.service import EnclaveService

    state = _state(store, database_url)
    users = Users(state)
    before = _require_user(users, username).scopes
    service = EnclaveService(store=store, state=state)
    warnings = check_scopes(scopes, algorithms=service.catalogue.entries(), store=service.store)
    user = users.set_scopes(username, scopes, actor="cli")
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(f"{user.username}: {', '.join(user.scopes) or 'no scopes'}", highlight=False)
    if gone := [scope for scope in before if scope not in user.scopes]:
        # A steward who meant to add a scope learns here that the others went.
        err_console.print(
            f"[yellow]no longer:[/] {', '.join(gone)} (grant replaces the scopes: "
            "name every scope to keep)",
            highlight=False,
        )


def _require_user(users: Users, username: str) -> User:
    """The user called `username`, or an error saying nobody is."""
    user = users.get(username)
    if user is None:
        raise CellcensusError(f"no user {username!r}; add it first with `cellcensus users add`")
    return user


def budget(
    username: Annotated[str, typer.Argument(help="Analyst.")],
    store: StoreOption,
    epsilon: Annotated[float, typer.Option(help="Total epsilon of the project.")],
    delta: Annotated[float, typer.Option(help="Total delta of the project.")] = 0.0,
    project: Annotated[str, typer.Option(help="Project.")] = "default",
    database_url: DatabaseOption = None,
) -> None:
    """Set an analyst's privacy budget for a project."""
    from cellcensus.holder.enclave.service import EnclaveService

    state = _state(store, database_url)
    service = EnclaveService(store=store, state=state)
    users = Users(state)
    user = users.get(username)
    # `cellcensus run --analyst NAME` gives a name that is no user a budget of its own.
    if user is None and not service.ledger.projects(analyst=username):
        _require_user(users, username)
    if user is not None and user.role is not Role.ANALYST:
        raise CellcensusError(f"{username} is a {user.role.value}; budgets are for analysts")
    left = service.set_budget(
        analyst=username, project=project, epsilon=epsilon, delta=delta, steward="cli"
    )
    console.print(f"{username}/{project}: epsilon {left[0]:g} left, delta {left[1]:g}")


def total_budget(
    store: StoreOption,
    epsilon: Annotated[float, typer.Option(help="Total epsilon of all analysts together.")],
    delta: Annotated[float, typer.Option(help="Total delta of all analysts together.")] = 0.0,
    database_url: DatabaseOption = None,
) -> None:
    """Set the store-wide privacy budget, as `PUT /budgets/total` (every analyst spends it)."""
    from cellcensus.holder.enclave.service import EnclaveService

    service = EnclaveService(store=store, state=_state(store, database_url))
    total = service.set_total_budget(epsilon=epsilon, delta=delta, steward="cli")
    console.print(
        f"all analysts together: epsilon {total.left.epsilon:g} left of {epsilon:g}, "
        f"delta {total.left.delta:g} of {delta:g}"
    )


def activate(
    username: Annotated[str, typer.Argument(help="User name.")],
    store: StoreOption,
    database_url: DatabaseOption = None,
) -> None:
    """Activate a user again; it logs in afresh."""
    users = Users(_state(store, database_url))
    _require_user(users, username)
    user = users.update(username, active=True, actor="cli")
    console.print(f"{user.username}: active {user.role.value}")


def deactivate(
    username: Annotated[str, typer.Argument(help="User name.")],
    store: StoreOption,
    database_url: DatabaseOption = None,
) -> None:
    """Deactivate a user and revoke its tokens, as `PATCH /users/NAME` does (not the last steward).

    A running service stops accepting them within two seconds (its caches' lifetime).
    """
    state = _state(store, database_url)
    users = Users(state)
    _require_user(users, username)
    user = users.update(username, active=False, actor="cli")
    revoked = revoke_all(state, username, actor="cli")
    console.print(f"{user.username}: inactive {user.role.value}, {revoked} token(s) revoked")


def set_password(
    username: Annotated[str, typer.Argument(help="User name.")],
    store: StoreOption,
    password_file: PasswordFileOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Set a new password for a user who lost theirs and revoke its tokens.

    As `PUT /users/NAME/password`; a running service stops accepting the tokens within two
    seconds (its caches' lifetime). The user must choose their own password at the next login
    before anything else.
    """
    users = Users(_state(store, database_url))
    _require_user(users, username)
    revoked = users.reset_password(username, _password(password_file), actor="cli")
    console.print(
        f"{username}: new password set, {revoked} token(s) revoked; {username} must choose "
        "their own at the next login"
    )


def list_users(store: StoreOption, database_url: DatabaseOption = None) -> None:
    """List registered users, their roles and scopes."""
    table = Table("user", "role", "active")
    # Folded, not cut: a scope's period is its last part, the one "…" would hide.
    table.add_column("scopes", overflow="fold")
    table.add_column("must change password")
    for user in Users(_state(store, database_url)).everyone():
        table.add_row(
            user.username,
            user.role.value,
            _yes_no(user.active),
            "\n".join(user.scopes),
            _yes_no(user.must_change_password),
        )
    console.print(table)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def show_policies(
    store: StoreOption,
    algorithm: Annotated[
        str | None, typer.Argument(help="One algorithm (default: every one in the catalogue).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show the release policies in force: each algorithm's default with the steward's changes."""
    from cellcensus.holder.enclave.service import EnclaveService

    service = EnclaveService(store=store, state=_state(store, database_url))
    names = [service.catalogue.get(algorithm).name] if algorithm else service.catalogue.entries()
    stored = service.policies.all()
    for name in sorted(names):
        changed = (
            "own changes"
            if name in stored
            else ("changes of *" if DEFAULT_KEY in stored else "default")
        )
        console.print(
            f"{name} ({changed}): {_policy_words(service.policies.for_algorithm(name))}",
            highlight=False,
        )


def _policy_words(policy: ReleasePolicy) -> str:
    disclosure = policy.disclosure
    dp = disclosure.dp
    noise = "no noise" if dp is None else f"{dp.mechanism} noise epsilon {dp.epsilon:g}"
    if dp is not None and dp.delta:
        noise += f" delta {dp.delta:g}"
    runs = " or ".join(policy.allowed_certifications)
    approval = _yes_no(policy.require_approval)
    return (
        f"counts of {disclosure.min_count:g} or fewer withheld, rounded to "
        f"{disclosure.rounding_base}, {noise}, approval {approval}, may run {runs}"
    )


def set_policies(
    file: Annotated[
        Path,
        typer.Argument(
            help="YAML or JSON: algorithm (or *) -> changes, as the body of PUT /policies/NAME."
        ),
    ],
    store: StoreOption,
    database_url: DatabaseOption = None,
) -> None:
    """Change release policies from a file, as `PUT /policies/NAME` does for each algorithm.

    Each entry replaces that algorithm's stored changes (`*`: for every algorithm without
    its own). Every entry is checked (a known algorithm, known fields, the disclosure floors)
    before any is stored, and each change is audited.
    """
    from cellcensus.holder.enclave.service import EnclaveService

    service = EnclaveService(store=store, state=_state(store, database_url))
    changes = {
        name: _policy_changes(body, source=f"{file}: {name}")
        for name, body in read_policy_file(file).items()
    }
    for name, body in changes.items():
        try:
            if name != DEFAULT_KEY:
                service.catalogue.get(name)
            ReleasePolicy.from_dict(body, default=service.policies.default_for(name))
        except CellcensusError as error:
            raise CellcensusError(f"{file}: {name}: {error}; nothing was changed") from None
    for name, body in changes.items():
        policy = service.policies.set(name, body, steward="cli")
        console.print(f"{name}: {_policy_words(policy)}", highlight=False)


def _policy_changes(body: Any, *, source: str) -> dict[str, Any]:
    """One entry of a policy file, checked as `PUT /policies/NAME` checks its body."""
    try:
        changes = PolicyIn.model_validate(body).model_dump(exclude_unset=True)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'entry'}: {item['msg']}"
            for item in error.errors()
        )
        raise CellcensusError(f"{source}: {problems}; nothing was changed") from None
    return dict(changes)


def verify(
    store: StoreOption,
    database_url: DatabaseOption = None,
    head: Annotated[
        str | None, typer.Option(help="A published head SEQ:HASH that must still be there.")
    ] = None,
) -> None:
    """Check the audit log's hash chain; name the first bad entry (exit 1 if any)."""
    expected = _parse_head(head) if head else None
    verdict = AuditLog(_state(store, database_url)).verify(head=expected)
    if verdict.ok:
        seq, digest = verdict.head
        console.print(f"audit log ok: {verdict.entries} entries, head {seq}:{digest}")
        return
    err_console.print(
        f"[bold red]audit log broken at entry {verdict.first_bad}:[/] {verdict.reason}",
        highlight=False,
    )
    raise typer.Exit(code=1)


def diagnostics(
    job_id: Annotated[str, typer.Argument(help="The failed job's id.")],
    store: StoreOption,
    database_url: DatabaseOption = None,
) -> None:
    """Show a failed job's traceback or stderr tail, checked against its audit entry.

    For the steward: it may quote what the job read. Exit 1 if it does not match the entry.
    """
    state = _state(store, database_url)
    found = JobDiagnostics(state).get(job_id)
    if found is None:
        raise CellcensusError(
            f"no diagnostics of job {job_id}: none were recorded, or `cellcensus store purge` "
            "deleted them"
        )
    console.print(found.detail, markup=False, highlight=False)
    if not found.matches(committed(state, job_id)):
        err_console.print("[bold red]does not match the job's job.failed audit entry[/]")
        raise typer.Exit(code=1)
    console.print(f"recorded {found.recorded_at}; matches the job's job.failed audit entry")


def _parse_head(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise CellcensusError(f"--head {text!r} is not SEQ:HASH (a number, a colon, 64 hex)")
    return int(seq), digest


def register(app: typer.Typer) -> None:
    """Add `serve`, `users`, `policies` and `audit` to the `cellcensus` app."""
    app.command(name="serve")(user_errors(serve))
    users_app = typer.Typer(
        help=(
            "Users of the service: add, grant scopes, budgets, set a password, deactivate, "
            "activate, list."
        )
    )
    users_app.command(name="add")(user_errors(add_user))
    users_app.command(name="deactivate")(user_errors(deactivate))
    users_app.command(name="activate")(user_errors(activate))
    users_app.command(name="password")(user_errors(set_password))
    users_app.command(name="grant")(user_errors(grant))
    users_app.command(name="budget")(user_errors(budget))
    users_app.command(name="total-budget")(user_errors(total_budget))
    users_app.command(name="list")(user_errors(list_users))
    app.add_typer(users_app, name="users")
    policies_app = typer.Typer(help="Release policies: disclosure, approval, who may run what.")
    policies_app.command(name="show")(user_errors(show_policies))
    policies_app.command(name="set")(user_errors(set_policies))
    app.add_typer(policies_app, name="policies")
    audit_app = typer.Typer(help="The hash-chained audit log, and failed jobs' diagnostics.")
    audit_app.command(name="verify")(user_errors(verify))
    audit_app.command(name="diagnostics")(user_errors(diagnostics))
    app.add_typer(audit_app, name="audit")
