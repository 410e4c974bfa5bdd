"""A private single-node Slurm for the tests: munged, slurmctld and slurmd, started as root in a scratch folder.

Nothing outside the folder is used: the daemons and the client commands read this cluster's own slurm.conf
(``SLURM_CONF``), munge has its own key and socket, the ports are free ones, the node offers this machine's
CPUs and no GPU. The daemons run in the foreground as children of the test process, which the kernel ends
with it should it die; ``stop`` cancels every job first (jobs outlive slurmd), then ends each daemon by its PID.

    PYTHONPATH=. python tests/support/slurm_cluster.py   # a throwaway cluster to try things by hand, until Ctrl-C
"""
import os
import shutil
import signal
import socket
import subprocess
import time

from tools.pipeline.executors.processes import die_with_parent

DAEMONS = ("munged", "slurmctld", "slurmd")
START_TIMEOUT = 60  # seconds for the node to be idle; a few on an idle machine


def why_unavailable():
    """Why the tests cannot start a cluster here, or "" when they can."""
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "srun", "scontrol")
               if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}")]
    if missing:
        return (f"Slurm is not installed ({', '.join(missing)} not found): apt-get install slurm-wlm munge, "
                "as .ci/run does")
    if os.geteuid() != 0:
        return "the test cluster's daemons run as root (SlurmUser=root); run the Slurm tests as root, as CI does"
    return ""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb():
    with open("/proc/meminfo") as f:
        total_kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    return total_kb // 1024 * 9 // 10  # slurmd drains a node that has less than it is said to have


def _daemon(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


class SingleNodeSlurm:
    def __init__(self, folder):
        self.folder = str(folder)
        self.conf = os.path.join(self.folder, "slurm.conf")
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.processes = {}

    @property
    def env(self):
        """What a client command needs to talk to this cluster."""
        return {"SLURM_CONF": self.conf}

    def _path(self, *parts):
        return os.path.join(self.folder, *parts)

    def _write_config(self):
        for sub in ("state", "spool", "log", "munge"):
            os.makedirs(self._path(sub), exist_ok=True)
        os.chmod(self._path("munge"), 0o700)
        with open(self._path("munge", "munge.key"), "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(self._path("munge", "munge.key"), 0o400)
        settings = {
            "ClusterName": "dpc-tests",
            "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmctldPort": _free_port(), "SlurmdPort": _free_port(),
            "SlurmUser": "root", "SlurmdUser": "root",
            "AuthType": "auth/munge", "CredType": "cred/munge",
            # cred_expire also holds a requeued job back (default 120 s): the requeue tests need it short
            "AuthInfo": f"socket={self._path('munge', 'munge.socket')},cred_expire=10",
            "StateSaveLocation": self._path("state"), "SlurmdSpoolDir": self._path("spool"),
            "SlurmctldLogFile": self._path("log", "slurmctld.log"), "SlurmdLogFile": self._path("log", "slurmd.log"),
            "SlurmctldPidFile": self._path("slurmctld.pid"), "SlurmdPidFile": self._path("slurmd.pid"),
            "ProctrackType": "proctrack/linuxproc", "TaskPlugin": "task/none", "MpiDefault": "none",
            "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_Core",
            "JobAcctGatherType": "jobacct_gather/none", "ReturnToService": 2,
            "KillWait": 5,  # seconds between SIGTERM and SIGKILL when a job is cancelled
            "SchedulerParameters": "sched_interval=2,bf_interval=2",  # pending jobs are looked at every 2 s
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        lines += [f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={_memory_mb()} State=UNKNOWN",
                  f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _spawn(self, name, *args):
        log = open(self._path("log", f"{name}.out"), "ab")
        self.processes[name] = subprocess.Popen([_daemon(name), *args], stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env={**os.environ, **self.env},
                                                preexec_fn=die_with_parent(os.getpid()))
        log.close()

    def start(self):
        self._write_config()
        munge = self._path("munge")
        try:
            self._spawn("munged", "--foreground", "--force", f"--socket={munge}/munge.socket",
                        f"--key-file={munge}/munge.key", f"--pid-file={munge}/munged.pid",
                        f"--seed-file={munge}/munged.seed", f"--log-file={munge}/munged.log")
            self._wait_for(lambda: os.path.exists(f"{munge}/munge.socket"), "munged to open its socket")
            self._spawn("slurmctld", "-D", "-f", self.conf)
            self._spawn("slurmd", "-D", "-f", self.conf)
            self._wait_for(self._node_idle, "the node to be idle in sinfo")
        except BaseException:
            self.stop()
            raise
        return self

    def _node_idle(self):
        shown = self.run("sinfo", "--noheader", "--format=%t", check=False)
        return shown.returncode == 0 and shown.stdout.strip() == "idle"

    def _wait_for(self, condition, what):
        deadline = time.time() + START_TIMEOUT
        while not condition():
            ended = [name for name, p in self.processes.items() if p.poll() is not None]
            if ended or time.time() > deadline:
                raise RuntimeError(f"the test Slurm did not start: waited for {what}; "
                                   f"{', '.join(ended) or 'no daemon'} ended. Logs:\n{self.logs()}")
            time.sleep(0.5)

    def run(self, *command, check=True):
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60,
                              env={**os.environ, **self.env})

    def logs(self, lines=20):
        tails = []
        for name in sorted(os.listdir(self._path("log"))):
            with open(self._path("log", name), errors="replace") as f:
                tails.append(f"--- {name}\n" + "".join(f.readlines()[-lines:]))
        return "\n".join(tails)

    def cancel_all_jobs(self, timeout=60):
        """scancel every job and wait until the queue is empty."""
        if self.processes.get("slurmctld") is None or self.processes["slurmctld"].poll() is not None:
            return
        self.run("scancel", f"--user={os.getuid()}", check=False)
        deadline = time.time() + timeout
        while time.time() < deadline:
            queued = self.run("squeue", "--noheader", "--format=%i", check=False)
            if queued.returncode != 0 or not queued.stdout.strip():
                return
            time.sleep(0.5)

    def stop(self):
        """Cancel every job, then end slurmd, slurmctld and munged by their PIDs."""
        try:
            self.cancel_all_jobs()
        finally:
            for name in reversed(DAEMONS):
                process = self.processes.pop(name, None)
                if process is None or process.poll() is not None:
                    continue
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()


if __name__ == "__main__":
    import sys
    import tempfile

    reason = why_unavailable()
    if reason:
        sys.exit(f"No test cluster: {reason}")
    with tempfile.TemporaryDirectory(prefix="slurm-") as scratch:
        cluster = SingleNodeSlurm(scratch).start()
        print(f"A single-node Slurm is up ({cluster.cpus} CPUs, no GPU). In another shell:\n"
              f"    export SLURM_CONF={cluster.conf}\nCtrl-C stops it.", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill ends it as Ctrl-C does
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            cluster.stop()
