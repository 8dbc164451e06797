"""The aws CLI (awscli from PyPI) for the host script's tests, started once instead of once a
call.

The host script (checks/remote_check.sh) runs `aws` dozens of times a command, and each run is
a fresh Python process that imports awscli and botocore and parses the S3, STS and endpoint
models: 0.6 s of CPU a call on this machine, most of the CPU the `--via-ssm` tests spent.
Here a server process imports awscli once, parses those models once, and forks a child per
call. The child is the real CLI: it takes the caller's argv, environment, working directory,
standard streams and ignored signals, runs `awscli.clidriver.main()` as the `aws` entry point
does, and its exit status becomes the caller's. A signal the caller receives is passed to the
child; a caller killed outright (SIGKILL, as the SSM agent and `timeout --kill-after` do) has
its child killed too. What the CLI sends, caches and prints is the CLI's own.

What awscli and botocore work out at import from the environment stays the server's, so:
- paths under $HOME (the CLI's credential cache, its alias file, the SSO caches) are
  rewritten to the caller's HOME in the child, wherever a module, a class or a function's
  defaults hold them (found once, after the warm-up: `_home_places`); `AWS_CLI_FORK_AUDIT=1`
  makes a call fail if any string still names the server's HOME (`AWS_CLI_FORK_AUDIT=forked`
  makes a forked call say so and stop);
- a caller whose locale, time zone, Python or CRT variables differ from the server's, or
  whose standard streams are not all open, gets the entry point itself (exec'd in the child).

`aws` on PATH is a small stdlib-only client (`python -SE`) that hands its streams to the server
over a Unix socket (SCM_RIGHTS). The server's environment is a fixed minimal one, and it ends
when the test process that started it does (its stdin closes). tests/test_aws_cli_fork.py holds
it to the entry point.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import traceback
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
AUDIT = "AWS_CLI_FORK_AUDIT"
IMPORT_TIME = ("BOTO_DISABLE_CRT", "TZ", "LANG", "LC_ALL", "LC_CTYPE")
"""Variables (and every PYTHON* one) that awscli, botocore or Python read at start-up: a caller
whose values differ from the server's runs the entry point."""
PACKAGES = ("awscli", "botocore", "s3transfer", "site")
"""Whose modules `_home_places` rewrites (site: the user site directory under $HOME)."""

CLIENT = """\
#!{python} -SE
# The aws CLI, run by the fork server (tests/support/aws_cli_fork.py).
import json, os, signal, socket, sys
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
ignored = [int(s) for s in FORWARDED if signal.getsignal(s) is signal.SIG_IGN]
# Until the call's pid is known, a signal waits: it is passed on once the handlers are set.
signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
for fd in (0, 1, 2):
    try:
        os.fstat(fd)
    except OSError:  # a closed stream: the socket could take its number; the CLI as it is
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        os.execv({entry!r}, [{entry!r}, *sys.argv[1:]])
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    conn.connect({address!r})
except OSError as err:
    sys.stderr.write(f"aws (test launcher): no fork server: {{err}}\\n")
    sys.exit(255)
request = json.dumps(
    {{"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd(), "ignored": ignored}}
).encode()
socket.send_fds(conn, [len(request).to_bytes(8, "big") + request], [0, 1, 2])
answers = conn.makefile("rb")
try:
    child = int(answers.readline() or 0)
except ValueError:
    child = 0
def forward(signum, _frame):
    if child > 0:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass
for signum in FORWARDED:
    if signum not in ignored:
        signal.signal(signum, forward)
signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
how, _, number = (answers.readline().decode() or "exit 255").partition(" ")
if how == "signal":
    signal.signal(int(number), signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [int(number)])
    os.kill(os.getpid(), int(number))
sys.exit(int(number))
"""

WARM_UP = (
    ["s3api", "put-object", "--generate-cli-skeleton", "input"],
    ["s3api", "delete-object", "--generate-cli-skeleton", "input"],
    ["sts", "get-caller-identity", "--generate-cli-skeleton", "input"],
)
"""Commands that load the CLI's and the S3 and STS models without sending anything."""

SERVER_HOME = [""]
"""The server's HOME (in a list, which `_audit` skips: a module's str would name it itself)."""
REHOME: list[Callable[[str], None]] = []
"""Each place where a module of PACKAGES holds the server's HOME after the warm-up, as a call
that puts the caller's there instead (`_home_places`, once; each child runs them)."""


def _warm_up() -> None:
    import awscli.clidriver
    import botocore.session

    from rehearsal.botocore_models import share_botocore_models  # as the tests' processes do

    share_botocore_models()
    with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
        for argv in WARM_UP:
            awscli.clidriver.create_clidriver().main(argv)
    session = botocore.session.get_session()
    for service in ("s3", "sts"):  # the endpoint rule sets and partitions, too
        session.create_client(
            service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
    del session
    gc.collect()  # what the warm-up made and dropped (its loaders' search paths among it)


def _holds(value: object, old: str) -> bool:
    if isinstance(value, str):
        return old in value
    return isinstance(value, tuple) and any(_holds(v, old) for v in value)


def _rehomed(value: object, old: str, new: str) -> object:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, tuple):
        return tuple(_rehomed(v, old, new) for v in value)
    return value


def _home_places(old: str) -> list[Callable[[str], None]]:
    """Paths the CLI computed from $HOME at import (its assumed-role credential cache, its
    alias file, the SSO caches): where modules of PACKAGES, their classes and their functions'
    defaults hold them, each as a call that rewrites it for another HOME."""
    places: list[Callable[[str], None]] = []

    def attribute(owner: object, name: str, value: object) -> None:
        if _holds(value, old):
            places.append(lambda home: setattr(owner, name, _rehomed(value, old, home)))

    def defaults(function: object) -> None:
        if not isinstance(function, types.FunctionType):
            return
        attribute(function, "__defaults__", function.__defaults__)
        for name, value in (function.__kwdefaults__ or {}).items():
            if _holds(value, old):
                places.append(
                    lambda home, kw=function.__kwdefaults__, n=name, v=value: kw.__setitem__(
                        n, _rehomed(v, old, home)
                    )
                )

    for name, module in list(sys.modules.items()):
        if module is None or name.partition(".")[0] not in PACKAGES:
            continue
        for attr, value in vars(module).items():
            defaults(value)
            attribute(module, attr, value)
            if isinstance(value, type) and value.__module__ == name:
                for key, member in vars(value).items():
                    method = isinstance(member, classmethod | staticmethod)
                    defaults(member.__func__ if method else member)
                    attribute(value, key, member)
    return places


def _audit() -> list[str]:
    """Every string still naming the server's HOME, in any container the GC tracks."""
    old = SERVER_HOME[0]
    found = []
    for obj in gc.get_objects():
        if obj is SERVER_HOME:
            continue
        values = obj.values() if isinstance(obj, dict) else obj
        if isinstance(obj, dict | list | tuple | set | frozenset):
            found += [v for v in values if isinstance(v, str) and old in v]
    return found


def _import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in IMPORT_TIME or k.startswith("PYTHON")}


def _run_child(request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: become the caller's `aws` process, run the CLI, exit with its code."""
    import awscli
    import awscli.clidriver

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    ignored = set(request["ignored"])  # type: ignore[call-overload]
    for signum in (*FORWARDED, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_IGN if signum in ignored else signal.SIG_DFL)
    if signal.SIGINT not in ignored:  # what Python does at start-up
        signal.signal(signal.SIGINT, signal.default_int_handler)
    env = dict(request["env"])  # type: ignore[call-overload]
    argv = list(request["argv"])  # type: ignore[call-overload]
    os.chdir(str(request["cwd"]))
    if _import_time_env(env) != _import_time_env(dict(os.environ)):
        # Start-up reads these: the entry point itself, in this process (the caller's pid).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        entry = str(Path(sys.executable).parent / "aws")
        os.execve(entry, [entry, *argv[1:]], env)  # noqa: S606 (the CLI's own entry point)
    os.environ.clear()
    os.environ.update(env)
    # What bin/aws and awscli/__init__.py do to the environment at start-up, for this caller,
    # with the same os.path calls (abspath, not resolve: no symlink is followed there).
    if os.environ.get("LC_CTYPE", "") == "UTF-8":
        os.environ["LC_CTYPE"] = "en_US.UTF-8"
    paths = [
        os.path.expanduser(os.path.expandvars(p))  # noqa: PTH111
        for p in env.get("AWS_DATA_PATH", "").split(os.pathsep)
        if "AWS_DATA_PATH" in env
    ]
    package = os.path.dirname(os.path.abspath(awscli.__file__))  # noqa: PTH100, PTH120
    paths.append(os.path.join(package, "data"))  # noqa: PTH118
    os.environ["AWS_DATA_PATH"] = os.pathsep.join(paths)
    home = str(Path("~").expanduser())
    for rehome in REHOME:
        rehome(home)
    sys.argv = argv
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    code = 1
    try:
        if env.get(AUDIT) == "1" and (left := _audit()):
            sys.stderr.write(f"aws (test launcher): the server's HOME is still in {left}\n")
            code = 3
        elif env.get(AUDIT) == "forked":  # for the tests: which of the two ran
            sys.stderr.write("aws (test launcher): forked\n")
            code = 3
        else:
            code = awscli.clidriver.main()
    except SystemExit as stop:  # as the interpreter reads it
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            sys.stderr.write(f"{stop.code}\n")
    except KeyboardInterrupt:  # uncaught: Python ends by the signal
        sys.stdout.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:  # noqa: BLE001 (the interpreter's own last words)
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _receive(conn: socket.socket) -> tuple[dict[str, object], list[int]]:
    conn.settimeout(10)  # a caller that connects and stalls holds up no one for long
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    try:
        size = int.from_bytes(data[:8], "big")
        body = data[8:]
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise ConnectionError("the caller went away mid-request")
            body += chunk
        if len(fds) != 3:
            raise ConnectionError("the caller sent no streams")
        return json.loads(body), fds
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise


def serve(name: str, log: str) -> None:
    """Serve at the abstract socket `name` (no file, no path length limit); log each end."""
    SERVER_HOME[0] = os.environ["HOME"]
    _warm_up()
    REHOME.extend(_home_places(SERVER_HOME[0]))
    sys.stdout.flush()
    sys.stderr.flush()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(f"\0{name}")
    listener.listen(128)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "wake")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    children: dict[int, socket.socket | None] = {}
    ended = Path(log).open("a", buffering=1)  # noqa: SIM115 (open for the server's life)
    print("ready", flush=True)
    while True:
        for key, _events in selector.select():
            if key.data == "parent":  # the test process has ended: so does this
                if not os.read(sys.stdin.fileno(), 512):
                    for pid in children:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    return
            elif key.data == "accept":
                conn, _ = listener.accept()
                try:
                    request, fds = _receive(conn)
                except (OSError, ValueError):
                    conn.close()
                    continue
                conn.settimeout(None)
                signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    for other in (listener, conn, *(c for c in children.values() if c)):
                        other.close()
                    selector.close()
                    ended.close()
                    for fd in (wake_r, wake_w):
                        os.close(fd)
                    _run_child(request, fds)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
                for fd in fds:
                    os.close(fd)
                try:
                    conn.sendall(f"{pid}\n".encode())
                except OSError:  # the caller is gone already: so is its call
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    conn.close()
                    children[pid] = None
                    continue
                children[pid] = conn
                selector.register(conn, selectors.EVENT_READ, pid)
            elif key.data == "wake":
                os.read(wake_r, 512)
            else:  # the caller is gone (killed) before its child ended: end the child too
                with contextlib.suppress(ProcessLookupError):
                    os.kill(key.data, signal.SIGKILL)
                selector.unregister(key.fileobj)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if os.WIFSIGNALED(status):
                answer = f"signal {os.WTERMSIG(status)}"
            else:
                answer = f"exit {os.waitstatus_to_exitcode(status)}"
            ended.write(f"{pid} {answer}\n")
            conn = children.pop(pid, None)
            if conn is None:
                continue
            with contextlib.suppress(KeyError):
                selector.unregister(conn)
            with contextlib.suppress(OSError):
                conn.sendall(f"{answer}\n".encode())
            conn.close()


@dataclass(frozen=True)
class ForkedCli:
    bin_dir: Path
    """Its `aws` runs the CLI through the fork server: put it first on PATH."""
    server: int
    """The server's pid: each running call is a child of it."""
    server_home: Path
    """The server's own HOME: nothing a call does may land there."""
    log: Path
    """One line a call as it ended: `<pid> exit <code>` or `<pid> signal <number>`."""

    def running(self) -> set[int]:
        """The calls the server is running now (its children)."""
        tasks = Path(f"/proc/{self.server}/task")
        return {int(p) for t in tasks.iterdir() for p in (t / "children").read_text().split()}

    def how_ended(self, pid: int) -> str | None:
        for line in self.log.read_text().splitlines():
            number, _, how = line.partition(" ")
            if int(number) == pid:
                return how
        return None


@contextlib.contextmanager
def forked_aws_cli(directory: Path) -> Iterator[ForkedCli]:
    """An `aws` that runs the CLI through a fork server, for as long as the block lasts."""
    name = f"ec2-assume-role-aws-cli-{uuid.uuid4().hex}"
    home = directory / "server-home"
    home.mkdir()
    log = directory / "calls.log"
    log.touch()
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    server = subprocess.Popen(
        [sys.executable, __file__, name, str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the aws CLI fork server did not start")
        bin_dir = directory / "bin"
        bin_dir.mkdir()
        client = bin_dir / "aws"
        entry = str(Path(sys.executable).parent / "aws")
        address = f"\0{name}"
        client.write_text(CLIENT.format(python=sys.executable, address=address, entry=entry))
        client.chmod(0o755)
        yield ForkedCli(bin_dir, server.pid, home, log)
    finally:
        assert server.stdin is not None
        server.stdin.close()  # the server kills what it still runs and ends
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C ends the tests, which end this
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's packages
    serve(sys.argv[1], sys.argv[2])
