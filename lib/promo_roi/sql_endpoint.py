"""The SQL endpoint: Spark's Thrift (HiveServer2, JDBC/ODBC) server over the jobs' catalog.

    scripts/sql_endpoint.sh start [--port 10000] [--host localhost] [--profile P] [--set KEY=VALUE ...]
    scripts/sql_endpoint.sh status|stop [--port 10000]
    beeline -u jdbc:hive2://localhost:10000 -n "$USER"

``serve`` (what ``start`` runs in the background) builds the SparkSession
exactly as the jobs do (:func:`promo_roi.session.build_spark_session`: Delta,
the warehouse, the Hive metastore, the schemas), registers declared tables
that are on disk but not yet in the catalog, (re)creates the analyst views
(:func:`promo_roi.analyst_views.create_spark_views`) and starts
``org.apache.spark.sql.hive.thriftserver.HiveThriftServer2`` on that session.

Two facts about the pinned pyspark wheel that this module works around:

- it ships the Thrift server classes and ``beeline`` but no
  ``start-thriftserver.sh``;
- the Thrift server opens each JDBC session with Hive's class loader, which
  does not see jars added by ``spark.jars.packages`` ("Cannot find catalog
  plugin class ... DeltaCatalog", delta-io/delta#1332). The Delta jars are
  resolved first with Spark's own resolver (``spark-submit --verbose
  --packages ...``, offline once they are in ~/.ivy2.5.2 or ~/.m2) and put on
  the driver's class path (``spark.driver.extraClassPath``).

The embedded Derby metastore (profile ``local`` without
``spark.metastore_url``) admits one JVM: while the endpoint runs, jobs on the
same warehouse cannot open the catalog. ``scripts/metastore_postgres.sh``
sets up the PostgreSQL metastore that the jobs and the endpoint share.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from promo_roi.config import AppConfig, load_config

log = logging.getLogger(__name__)

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
DEFAULT_PORT = 10000
DEFAULT_HOST = "localhost"
READY_LINE = "promo-roi SQL endpoint ready"
RUN_DIR_ENV = "PROMO_ROI_SQL_ENDPOINT_DIR"


def venv_bin() -> Path:
    """The bin/ directory of the interpreter running this (the venv with pyspark)."""
    return Path(sys.executable).parent


class RunDirError(RuntimeError):
    """The run directory is not private to this user (exit 2)."""


def run_dir(explicit: str | None = None) -> Path:
    """Where pid and log files live (per port): --run-dir, $PROMO_ROI_SQL_ENDPOINT_DIR or a directory of
    this user's under the temp dir. Private (0700, owned by this user): the log holds the server's settings
    and queries, and a pid file another user could write would make ``stop`` signal their process."""
    default = Path(tempfile.gettempdir()) / f"promo-roi-sql-endpoint-{os.getuid()}"
    path = Path(explicit or os.environ.get(RUN_DIR_ENV) or default)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if path.is_symlink() or info.st_uid != os.getuid():
        raise RunDirError(f"run directory {path} is not a directory owned by this user: choose --run-dir")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    return path


def _private_file(path: Path):
    """``path`` truncated and opened for writing, readable by this user only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # spark-submit and beeline find Spark through the python3 on PATH: make it the venv's.
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    return env


def resolve_package_jars(config: AppConfig) -> list[str]:
    """Local jar files of the config's spark.jars.packages, resolved by Spark's own resolver.

    Runs ``spark-submit --verbose --packages ... --class org.apache.spark.deploy.SparkSubmit
    spark-internal --version``: the outer spark-submit resolves the packages (Ivy cache or
    ~/.m2 first, then Maven Central) and prints the class path; the inner one prints its
    version and exits. A few seconds; no SparkContext.
    """
    from promo_roi.session import spark_settings

    settings = spark_settings(config)
    packages = settings.get("spark.jars.packages", "")
    if not packages:
        return []
    cmd = [str(venv_bin() / "spark-submit"), "--verbose", "--packages", packages]
    for key, value in settings.items():
        if key.startswith("spark.jars.") and key != "spark.jars.packages":
            cmd += ["--conf", f"{key}={value}"]
    cmd += ["--class", "org.apache.spark.deploy.SparkSubmit", "spark-internal", "--version"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    output = done.stdout + "\n" + done.stderr
    jars: list[str] = []
    in_classpath = False
    for line in output.splitlines():
        if line.strip() == "Classpath elements:":
            in_classpath = True
            continue
        if in_classpath:
            entry = line.strip()
            if not entry:
                break
            jars.append(entry.removeprefix("file://").removeprefix("file:"))
    missing = [j for j in jars if not Path(j).is_file()]
    if done.returncode != 0 or not jars or missing:
        tail = "\n".join(output.splitlines()[-25:])
        raise RuntimeError(f"could not resolve {packages} with spark-submit (exit {done.returncode}):\n{tail}")
    return jars


def endpoint_config(config: AppConfig, host: str, port: int, jars: Sequence[str]) -> AppConfig:
    """The jobs' config plus what the Thrift server needs: its address, Delta on the class path."""
    extra = dict(config.spark.extra)
    classpath = [p for p in extra.get("spark.driver.extraClassPath", "").split(os.pathsep) if p]
    extra["spark.driver.extraClassPath"] = os.pathsep.join([*classpath, *jars])
    extra["spark.hadoop.hive.server2.thrift.port"] = str(port)
    extra["spark.hadoop.hive.server2.thrift.bind.host"] = host
    extra.setdefault("spark.ui.enabled", "false")
    return dataclasses.replace(config, spark=dataclasses.replace(config.spark, extra=extra))


AUTH_KEY = "spark.hadoop.hive.server2.authentication"
# HiveServer2 modes that check who connects; NONE (the default) and NOSASL let anyone in as any user.
AUTHENTICATED_MODES = frozenset({"LDAP", "CUSTOM", "KERBEROS", "PAM"})


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address (0.0.0.0 and :: are not)."""
    import ipaddress

    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    addresses = {info[4][0].split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def bind_refusal(host: str, extra: dict[str, str] | None) -> str | None:
    """Why the endpoint must not bind ``host`` with these Spark settings, or None.

    The Thrift server runs SQL as the server's own user, on every table of the warehouse: off the loopback
    interface it needs HiveServer2 authentication (``spark.extra`` ``spark.hadoop.hive.server2.authentication``:
    LDAP with its URL, CUSTOM with a password provider class, KERBEROS or PAM; TLS via
    ``hive.server2.use.SSL`` on top). Passwords belong in those settings' files, never on the command line."""
    if is_loopback(host):
        return None
    mode = str((extra or {}).get(AUTH_KEY, "NONE")).upper()
    if mode in AUTHENTICATED_MODES:
        return None
    return (f"refusing to bind the SQL endpoint to {host!r}, which is not a loopback address, without "
            f"authentication ({AUTH_KEY} is {mode}): anyone who reaches the port could read every table as "
            f"this user. Bind localhost (the default), or set spark.extra {AUTH_KEY} to one of "
            f"{', '.join(sorted(AUTHENTICATED_MODES))} with its settings (docs: HiveServer2 authentication)")


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def jdbc_url(host: str, port: int) -> str:
    return f"jdbc:hive2://{host}:{port}"


# --- a JDBC client: beeline from the pyspark wheel ---------------------------------------

class JdbcQueryError(RuntimeError):
    """beeline reported an error (the server's message is in the exception)."""


_MARKER = "promo_roi_result_marker"


def jdbc_query(url: str, statements: Sequence[str], user: str | None = None,
               timeout: float = 600) -> list[tuple[list[str], list[list[str]]]]:
    """Runs ``statements`` through the Hive JDBC driver (``beeline``, one JVM for all of them).

    Returns (columns, rows) per statement, every cell as beeline prints it
    (NULL as ``NULL``). A failing statement raises :class:`JdbcQueryError` with
    the server's error lines.
    """
    import csv

    lines = []
    for i, statement in enumerate(statements):
        lines.append(f"SELECT '{i}' AS {_MARKER};")
        lines.append(statement.strip().rstrip(";") + ";")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
        script = fh.name
    try:
        done = subprocess.run(
            [str(venv_bin() / "beeline"), "-u", url, "-n", user or os.environ.get("USER", "promo-roi"),
             "--silent=true", "--showHeader=true", "--outputformat=csv2", "-f", script],
            capture_output=True, text=True, env=_env(), timeout=timeout, stdin=subprocess.DEVNULL)
    finally:
        os.unlink(script)
    errors = [line for line in done.stderr.splitlines() if line.startswith(("Error:", "Caused by:"))]
    if done.returncode != 0 or errors:
        raise JdbcQueryError("\n".join(errors) or done.stderr[-2000:] or f"beeline exited {done.returncode}")
    results: list[tuple[list[str], list[list[str]]]] = []
    current: list[list[str]] | None = None
    prompt = re.compile(r"^\d+: jdbc:hive2://\S+> ?")
    # csv2 quotes a value holding the delimiter with NUL characters (disable.quoting.for.sv=true)
    text = [prompt.sub("", line).replace("\x00", '"') for line in done.stdout.splitlines()]
    rows = list(csv.reader(line for line in text if line.strip()))
    i = 0
    while i < len(rows):
        if rows[i] == [_MARKER]:
            i += 2  # the marker's header and value
            current = []
            results.append(([], current))
            continue
        if current is not None:
            if not results[-1][0]:
                results[-1] = (rows[i], current)
            else:
                current.append(rows[i])
        i += 1
    if len(results) != len(statements):
        raise JdbcQueryError(f"expected {len(statements)} results from beeline, parsed {len(results)}:\n"
                             + done.stdout[-2000:])
    return results


# --- serve: the foreground server --------------------------------------------------------

def register_tables(spark, config: AppConfig) -> list[str]:
    """Registers every declared table that exists on disk but not in the catalog (by its path).

    The jobs register a table when they first write it; a metastore set up after the
    tables were written (a new PostgreSQL metastore) would otherwise not name them.
    """
    from promo_roi import delta_io
    from promo_roi.tables import all_specs

    added = []
    for spec in all_specs(config.features):
        if spark.catalog.tableExists(spec.full_name) or not delta_io.table_exists(spark, spec, config.warehouse):
            continue
        spark.sql(f"CREATE TABLE IF NOT EXISTS {spec.full_name} USING DELTA "
                  f"LOCATION '{delta_io.table_path(config.warehouse, spec)}'")
        added.append(spec.full_name)
    if added:
        log.info("registered in the catalog: %s", ", ".join(added))
    return added


def serve(config: AppConfig, host: str, port: int) -> int:
    from promo_roi.analyst_views import create_spark_views
    from promo_roi.session import build_spark_session

    refusal = bind_refusal(host, dict(config.spark.extra))
    if refusal:
        log.error("%s", refusal)
        return 2
    if port_open(host, port):
        log.error("port %s:%d is already in use", host, port)
        return 1
    jars = resolve_package_jars(config)
    log.info("driver class path for the Thrift server: %s", ", ".join(jars) or "-")
    spark = build_spark_session(endpoint_config(config, host, port, jars), app_name="promo-roi-sql-endpoint")
    register_tables(spark, config)
    report = create_spark_views(spark, config)
    for name, reason in report.skipped.items():
        log.warning("view %s not available: %s", name, reason)
    jvm = spark.sparkContext._jvm
    server = jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
        spark._jsparkSession.sqlContext())
    stopping = []

    def _stop(signum, _frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    deadline = time.monotonic() + 120
    while not port_open(host, port) and time.monotonic() < deadline and not stopping:
        time.sleep(0.5)
    if not port_open(host, port):
        log.error("the Thrift server did not open %s:%d", host, port)
        return 1
    metastore = config.spark.metastore_url or "embedded Derby under the warehouse"
    print(f"{READY_LINE}: {jdbc_url(host, port)} warehouse={config.warehouse.root} metastore={metastore} "
          f"views={','.join(report.created)}", flush=True)
    while not stopping:
        time.sleep(0.5)
    log.info("stopping the SQL endpoint (signal %s)", stopping[0])
    for step in (server.stop, spark.stop):
        try:
            step()
        except Exception as exc:  # the JVM may be shutting down on its own signal
            log.warning("while stopping: %s", exc)
    return 0


# --- start / stop / status: the background process ----------------------------------------

def _files(directory: Path, port: int) -> tuple[Path, Path]:
    return directory / f"endpoint-{port}.pid", directory / f"endpoint-{port}.log"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _hint(log_text: str) -> str:
    if "Another instance of Derby may have already booted the database" in log_text:
        return ("the embedded Derby metastore is in use by another process (a job, a notebook or another "
                "endpoint): stop it, or use the shared PostgreSQL metastore (scripts/metastore_postgres.sh)")
    if "No suitable driver" in log_text or ("org.postgresql.Driver" in log_text and "ClassNotFound" in log_text):
        return "the PostgreSQL JDBC driver is not on Spark's class path: run scripts/metastore_postgres.sh start"
    return ""


def start(args: argparse.Namespace) -> int:
    directory = run_dir(args.run_dir)
    pid_file, log_file = _files(directory, args.port)
    running = _read_pid(pid_file)
    if running:
        print(f"SQL endpoint already running on port {args.port} (pid {running}); log {log_file}")
        return 0
    if port_open(args.host, args.port):
        print(f"port {args.host}:{args.port} is in use by another program; choose --port", file=sys.stderr)
        return 1
    config = load_config(args.profile, args.conf_dir, args.overrides, env=os.environ)
    refusal = bind_refusal(args.host, dict(config.spark.extra))
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if config.spark.metastore_url is None and config.spark.catalog == "hive":
        print("note: embedded Derby metastore: jobs on this warehouse cannot run while the endpoint is up "
              "(stop it first, or use scripts/metastore_postgres.sh for a shared metastore)")
    cmd = [sys.executable, "-m", "promo_roi.sql_endpoint", "serve", "--host", args.host, "--port", str(args.port)]
    if args.profile:
        cmd += ["--profile", args.profile]
    if args.conf_dir:
        cmd += ["--conf-dir", args.conf_dir]
    for item in args.overrides:
        cmd += ["--set", item]
    with _private_file(log_file) as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=directory, env=_env(), start_new_session=True)
    with _private_file(pid_file) as out:
        out.write(f"{proc.pid}\n")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if READY_LINE in log_file.read_text(errors="replace") and port_open(args.host, args.port):
            print(f"SQL endpoint up: {jdbc_url(args.host, args.port)} (pid {proc.pid}, log {log_file})")
            print(f"  beeline -u {jdbc_url(args.host, args.port)} -n $USER")
            return 0
        time.sleep(1)
    text = log_file.read_text(errors="replace")
    if proc.poll() is None:
        _terminate(proc.pid)
        reason = f"not ready after {args.timeout} s"
    else:
        reason = f"exited with code {proc.returncode}"
    pid_file.unlink(missing_ok=True)
    tail = "\n".join(line for line in text.splitlines() if not line.startswith("\tat "))[-4000:]
    hint = _hint(text)
    print(f"SQL endpoint failed to start: {reason}; log {log_file}\n{tail}" + (f"\n\n{hint}" if hint else ""),
          file=sys.stderr)
    return 1


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _terminate(pid: int, grace: float = 60.0) -> None:
    """Stops the endpoint: SIGTERM to its Python driver (which stops the Thrift server and Spark), then,
    after ``grace`` seconds, SIGKILL to whatever is left of its process group (it runs in its own session)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.5)
    if _group_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(args: argparse.Namespace) -> int:
    pid_file, _ = _files(run_dir(args.run_dir), args.port)
    pid = _read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        print(f"no SQL endpoint running on port {args.port}")
        return 0
    _terminate(pid)
    pid_file.unlink(missing_ok=True)
    print(f"SQL endpoint on port {args.port} stopped (pid {pid})")
    return 0


def status(args: argparse.Namespace) -> int:
    pid_file, log_file = _files(run_dir(args.run_dir), args.port)
    pid = _read_pid(pid_file)
    if pid is None:
        print(f"no SQL endpoint running on port {args.port}")
        return 3
    state = "accepting connections" if port_open(args.host, args.port) else "starting (port not open yet)"
    print(f"SQL endpoint on port {args.port}: pid {pid}, {state}, {jdbc_url(args.host, args.port)}, log {log_file}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sql_endpoint", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "serve", "stop", "status"):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, default=DEFAULT_PORT)
        p.add_argument("--host", default=DEFAULT_HOST)
        p.add_argument("--run-dir", help=f"pid and log files (default: ${RUN_DIR_ENV} or a temp dir)")
        if name in ("start", "serve"):
            p.add_argument("--profile")
            p.add_argument("--conf-dir")
            p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
        if name == "start":
            p.add_argument("--timeout", type=int, default=300, help="seconds to wait for the server (default 300)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        from promo_roi.observability import configure_logging

        configure_logging("INFO")
        config = load_config(args.profile, args.conf_dir, args.overrides, env=os.environ)
        return serve(config, args.host, args.port)
    try:
        return {"start": start, "stop": stop, "status": status}[args.command](args)
    except RunDirError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
