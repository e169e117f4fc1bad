"""A standalone Spark cluster on 127.0.0.1 for tests: a master and one worker, each its own
JVM started with pyspark's `bin/spark-class`, as docs/ENGINES.md ("On a cluster") starts
them. Executors run in a JVM the worker starts, with their work folder under the
worker's: a relative path given to a task is resolved there, not in the driver's folder.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    master: str  # spark://127.0.0.1:PORT
    ui: str  # the master's web UI, whose /json/ lists the workers
    logs: Path


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _alive_workers(ui: str) -> int:
    try:
        with urllib.request.urlopen(f"{ui}/json/", timeout=2) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


@contextmanager
def standalone_cluster(folder: Path, cores: int = 2, memory: str = "1500m") -> Iterator[Cluster]:
    """A master and one worker (`cores`, `memory`), stopped (and their JVMs gone) after."""
    home = spark_home()
    spark_class = str(home / "bin" / "spark-class")
    port, ui_port, worker_ui = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_NO_DAEMONIZE": "1"}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with (folder / "master.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                 "--port", str(port), "--webui-port", str(ui_port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
        master = f"spark://127.0.0.1:{port}"
        with (folder / "worker.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", master,
                 "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory,
                 "--webui-port", str(worker_ui), "--work-dir", str(folder / "work")],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
        ui = f"http://127.0.0.1:{ui_port}"
        deadline = time.monotonic() + 90
        while _alive_workers(ui) < 1:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited; see {folder}/*.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no Spark worker registered in 90 s; see {folder}/*.log")
            time.sleep(0.25)
        yield Cluster(master, ui, folder)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
