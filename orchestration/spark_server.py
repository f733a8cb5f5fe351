"""A local Spark Thrift server, the stand-in for a cluster (``cxw spark start|stop|status``; docs/spark.md).

dbt reaches Spark the way users reach a cluster: dbt-spark's ``method: thrift`` against a HiveServer2
endpoint. Locally that endpoint is Spark's own ``HiveThriftServer2``, which pyspark's wheel ships (in
``.venv-spark``; there is no ``start-thriftserver.sh`` in it, so it is started through ``spark-submit``).
Its warehouse (the Parquet tables dbt builds) and its metastore (embedded Derby) live under
``$CX_DATA_DIR/spark``, so one data directory holds everything, and nothing is downloaded.

The server runs in its own process group (``spark-submit`` is a shell wrapper around the JVM): stopping
it signals the whole group, and the pid file records the group. Framework-free: no Dagster import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ingestion import settings

ROOT = Path(__file__).resolve().parents[1]
THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
JAVA_HINT = ("install a Java 17 runtime (Debian: `apt-get install -y openjdk-17-jre-headless`) or set JAVA_HOME "
             "to one")


# The local server's logging (SPARK_CONF_DIR/log4j2.properties). The Thrift server logs every statement
# at INFO after variable substitution, so with the key secret in it (macros/keys.sql): that logger is
# kept at WARN. The rest at WARN too: at INFO a build writes some 100,000 lines.
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.statements.name = org.apache.spark.sql.hive.thriftserver.SparkExecuteStatementOperation
logger.statements.level = warn
logger.server.name = org.apache.spark.sql.hive.thriftserver.HiveThriftServer2
logger.server.level = info
"""


class SparkError(RuntimeError):
    """Spark cannot be started or reached; the message names what to start, install or set."""


def default_spark_home() -> Path | None:
    """The Spark distribution inside pyspark's wheel in ``.venv-spark`` (``make install``), if present."""
    for candidate in sorted(ROOT.glob(".venv-spark/lib/python3*/site-packages/pyspark")):
        if (candidate / "bin" / "spark-submit").exists():
            return candidate
    return None


def find_java() -> Path:
    """The ``java`` Spark will run: ``$JAVA_HOME/bin/java``, else the one on ``PATH``."""
    java_home = settings.current().java_home
    if java_home:
        java = Path(java_home) / "bin" / "java"
        if not java.exists():
            raise SparkError(f"JAVA_HOME={java_home} has no bin/java: {JAVA_HINT}")
        return java
    found = shutil.which("java")
    if not found:
        raise SparkError(f"Java not found (no `java` on PATH, JAVA_HOME unset): Spark needs it; {JAVA_HINT}")
    return Path(found)


def is_listening(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def warehouse_dir(data_dir: Path | None = None) -> Path:
    """Where the Spark tables of ``data_dir`` are (CX_SPARK_WAREHOUSE_DIR, else ``<data_dir>/spark/warehouse``)."""
    return LocalServer.from_settings(data_dir).warehouse_dir


def require_server(host: str | None = None, port: int | None = None) -> None:
    """Fail with what to start when nothing listens where dbt's ``spark`` target connects."""
    s = settings.current()
    host, port = host or s.spark_host, port or s.spark_port
    if not is_listening(host, port):
        raise SparkError(
            f"No Spark Thrift server answers at {host}:{port} (CX_SPARK_HOST, CX_SPARK_PORT). Start the local "
            f"one with `cxw spark start`, or point CX_SPARK_HOST and CX_SPARK_PORT at your cluster's "
            f"(docs/spark.md).")


def _signal_reaches(send: Callable[[int, int], None], target: int) -> bool:
    """Whether signal 0 reaches ``target`` with ``send`` (os.kill: a process, os.killpg: a group)."""
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int) -> bool:
    return _signal_reaches(os.kill, pid)


# what CX_SPARK_CONF may not set (it may tune the rest): what the build's correctness rests on, and what has a
# setting of its own (spark-submit would take its flag over the property, silently)
PINNED_CONF = {
    "spark.sql.warehouse.dir": "set CX_SPARK_WAREHOUSE_DIR instead",
    "spark.driver.memory": "set CX_SPARK_DRIVER_MEMORY instead",
    "spark.master": "the local server runs local[2]; for a cluster, point CX_SPARK_HOST at its Thrift server",
    "spark.driver.extraJavaOptions": "it places the metastore under the data directory",
    "spark.sql.session.timeZone": "instants are UTC everywhere in the project",
    "spark.sql.parquet.mergeSchema": "the sources read every nightly file of an entity",
    "spark.sql.parquet.outputTimestampType": "DuckDB reads the tables back (spark_mirror.py)",
}


@dataclasses.dataclass(frozen=True)
class LocalServer:
    """The local Thrift server of one data directory."""

    data_dir: Path
    host: str
    port: int
    spark_home: Path | None
    driver_memory: str = "4g"
    warehouse: Path | None = None  # default: <data_dir>/spark/warehouse
    conf: tuple[tuple[str, str], ...] = ()  # CX_SPARK_CONF: passed after the project's own --conf

    @classmethod
    def from_settings(cls, data_dir: Path | None = None) -> LocalServer:
        s = settings.current()
        return cls(Path(data_dir or s.data_dir).resolve(), s.spark_host, s.spark_port,
                   s.spark_home or default_spark_home(), s.spark_driver_memory, s.spark_warehouse_dir,
                   s.spark_conf)

    @property
    def root(self) -> Path:
        return self.data_dir / "spark"

    @property
    def warehouse_dir(self) -> Path:
        """Where Spark writes the tables dbt builds: ``<schema>.db/<table>/part-*.parquet``."""
        return Path(self.warehouse).resolve() if self.warehouse else self.root / "warehouse"

    @property
    def log_path(self) -> Path:
        return self.root / "thriftserver.log"

    @property
    def pid_path(self) -> Path:
        return self.root / "thriftserver.pid"

    def command(self) -> list[str]:
        if self.spark_home is None or not (self.spark_home / "bin" / "spark-submit").exists():
            where = f"{self.spark_home}/bin/spark-submit" if self.spark_home else ".venv-spark (pyspark)"
            raise SparkError(f"Spark not found: no {where}. Run `make install` (it installs pyspark into "
                             f".venv-spark) or set CX_SPARK_HOME to a Spark distribution.")
        pinned = [key for key, _ in self.conf if key in PINNED_CONF]
        if pinned:
            raise SparkError("CX_SPARK_CONF may not set " + "; ".join(f"{key} ({PINNED_CONF[key]})" for key in pinned)
                             + ": remove it from CX_SPARK_CONF.")
        metastore = self.root / "metastore_db"
        return [
            str(self.spark_home / "bin" / "spark-submit"),
            "--class", THRIFT_CLASS,
            "--name", f"cx-warehouse thrift ({self.data_dir})",
            "--master", "local[2]",
            "--driver-memory", self.driver_memory,
            "--conf", f"spark.sql.warehouse.dir={self.warehouse_dir}",
            "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={self.root} "
                      f"-Dderby.stream.error.file={self.root / 'derby.log'}",
            # instants are UTC everywhere in the project (macros/time.sql converts to local dates explicitly)
            "--conf", "spark.sql.session.timeZone=UTC",
            # the default 200 shuffle partitions make every small join 200 tasks on 2 cores
            "--conf", "spark.sql.shuffle.partitions=4",
            "--conf", "spark.ui.enabled=false",
            # planned for a small window (tests, demos): adaptive execution re-plans after each stage and
            # whole-stage code generation compiles each query's Java first, which costs more than it saves on a
            # few thousand rows (the KPI mart's unit tests 58 s -> 36 s; docs/spark.md, "Parity")
            "--conf", "spark.sql.adaptive.enabled=false",
            "--conf", "spark.sql.codegen.wholeStage=false",
            # source views read every nightly file of an entity: later contract versions add columns
            "--conf", "spark.sql.parquet.mergeSchema=true",
            # instants as Parquet's UTC-adjusted TIMESTAMP (not the legacy INT96): DuckDB reads them back as
            # `timestamp with time zone`, the type the DuckDB build gives them (spark_mirror.py)
            "--conf", "spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS",
            "--hiveconf", f"javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={metastore};create=true",
            "--hiveconf", f"hive.server2.thrift.port={self.port}",
            "--hiveconf", f"hive.server2.thrift.bind.host={self.host}",
            # spark-submit keeps the last --conf of a key: the user's CX_SPARK_CONF wins over the defaults above
            *[arg for key, value in self.conf for arg in ("--conf", f"{key}={value}")],
            "spark-internal",
        ]

    def recorded(self) -> dict | None:
        """The running server this data directory started (pid file, process alive), or None."""
        try:
            info = json.loads(self.pid_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) and _alive(int(info.get("pid", 0))) else None

    def start(self, timeout: float = 240.0, echo: Callable[[str], None] = print) -> dict:
        """Start the server and wait until it accepts connections; returns its record (pid, port, ...)."""
        running = self.recorded()
        if running and is_listening(self.host, self.port):
            echo(f"Spark Thrift server already running (pid {running['pid']}, {self.host}:{self.port}).")
            return running
        if is_listening(self.host, self.port):
            raise SparkError(f"Port {self.host}:{self.port} is taken by another process: stop it, or choose a free "
                             f"port with CX_SPARK_PORT.")
        java = find_java()
        command = self.command()
        self.root.mkdir(parents=True, exist_ok=True)
        self.warehouse_dir.mkdir(parents=True, exist_ok=True)
        conf_dir = self.root / "conf"
        conf_dir.mkdir(exist_ok=True)
        (conf_dir / "log4j2.properties").write_text(LOG4J2, encoding="utf-8")
        env = {**settings.subprocess_env(self.data_dir), "SPARK_HOME": str(self.spark_home),
               "JAVA_HOME": str(java.resolve().parents[1]),
               # keep the JVM off the network interfaces: a local stand-in, not a cluster node
               "SPARK_LOCAL_IP": "127.0.0.1" if self.host in ("127.0.0.1", "localhost") else self.host,
               # pyspark's wheel has no conf dir; its scripts then use these defaults
               "SPARK_LOG_DIR": str(self.root), "SPARK_PID_DIR": str(self.root), "SPARK_CONF_DIR": str(conf_dir)}
        started = time.time()
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=self.root, env=env, start_new_session=True)
        record = {"pid": process.pid, "pgid": process.pid, "host": self.host, "port": self.port,
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                  "warehouse_dir": str(self.warehouse_dir)}
        self.pid_path.write_text(json.dumps(record), encoding="utf-8")
        echo(f"Starting the Spark Thrift server on {self.host}:{self.port} (pid {process.pid}, log "
             f"{self.log_path}) ...")
        while not is_listening(self.host, self.port):
            if process.poll() is not None:
                self.pid_path.unlink(missing_ok=True)
                raise SparkError(f"The Spark Thrift server exited with code {process.returncode} before "
                                 f"listening; the end of {self.log_path}:\n{self.log_tail()}")
            if time.time() - started > timeout:
                self.stop(echo=lambda _msg: None)
                raise SparkError(f"The Spark Thrift server did not listen on {self.host}:{self.port} within "
                                 f"{timeout:.0f} s; the end of {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.5)
        echo(f"Spark Thrift server listening on {self.host}:{self.port} after {time.time() - started:.0f} s.")
        return record

    def stop(self, timeout: float = 60.0, echo: Callable[[str], None] = print) -> bool:
        """Stop the server this data directory started (its whole process group); False if none ran."""
        try:
            info = json.loads(self.pid_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            echo("No Spark Thrift server recorded for this data directory.")
            return False
        pgid = int(info.get("pgid", 0))
        if pgid <= 1:
            self.pid_path.unlink(missing_ok=True)
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.time() + wait
            while time.time() < deadline and _group_alive(pgid):
                time.sleep(0.25)
            if not _group_alive(pgid):
                break
        self.pid_path.unlink(missing_ok=True)
        echo(f"Spark Thrift server stopped (pid {info.get('pid')}).")
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


def _group_alive(pgid: int) -> bool:
    if not _signal_reaches(os.killpg, pgid):
        return False
    # a zombie leader still counts for killpg: reap it if it is our child, then ask again
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    return _signal_reaches(os.killpg, pgid)
