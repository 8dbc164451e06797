"""The aws CLI (awscli from PyPI) for the host script's tests, started once instead of once a
call.

The host script (checks/remote_check.sh) runs `aws` dozens of times a command, and each run is
a fresh Python process that imports awscli and botocore and parses the S3, STS and endpoint
models: 0.6 s of CPU a call on this machine, most of the CPU the `--via-ssm` tests spend.
Here a server process imports awscli once, parses those models once, and forks a child per
call. The child is the real CLI: it takes the caller's argv, environment, working directory
and standard streams, runs `awscli.clidriver.main()` exactly as the `aws` entry point does,
and its exit status becomes the caller's. A signal the caller receives is passed to the
child; a caller killed outright (SIGKILL, as the SSM agent and `timeout --kill-after` do) has
its child killed too. What the CLI sends, caches (its credential cache under $HOME) and prints
is the CLI's own.

`aws` on PATH is a small stdlib-only client (`python -SE`) that hands its streams to the
server over a Unix socket (SCM_RIGHTS). tests/test_aws_cli_fork.py holds it to the entry
point: same output, same exit codes, same signals.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CLIENT = """\
#!{python} -SE
# The aws CLI, run by the fork server at {socket} (tests/support/aws_cli_fork.py).
import json, os, signal, socket, sys
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    conn.connect({socket!r})
except OSError as err:
    sys.stderr.write(f"aws (test launcher): no fork server: {{err}}\\n")
    sys.exit(255)
request = json.dumps({{"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd()}}).encode()
socket.send_fds(conn, [len(request).to_bytes(8, "big") + request], [0, 1, 2])
answers = conn.makefile("rb")
child = int(answers.readline() or 0)
def forward(signum, _frame):
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass
for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(signum, forward)
how, _, number = (answers.readline().decode() or "exit 255").partition(" ")
if how == "signal":
    signal.signal(int(number), signal.SIG_DFL)
    os.kill(os.getpid(), int(number))
sys.exit(int(number))
"""

WARM_UP = (
    ["s3api", "put-object", "--generate-cli-skeleton", "input"],
    ["s3api", "delete-object", "--generate-cli-skeleton", "input"],
    ["sts", "get-caller-identity", "--generate-cli-skeleton", "input"],
)
"""Commands that load the CLI's and the S3 and STS models without sending anything."""


def _share_parsed_models() -> None:
    """Each botocore JSON file parsed once in the server; every child inherits the result."""
    from botocore.loaders import JSONFileLoader

    parse = JSONFileLoader.load_file
    parsed: dict[str, object] = {}

    def load_file(self: JSONFileLoader, file_path: str) -> object:
        if file_path not in parsed:
            parsed[file_path] = parse(self, file_path)
        return parsed[file_path]

    JSONFileLoader.load_file = load_file  # type: ignore[method-assign]


def _warm_up() -> None:
    import awscli.clidriver
    import botocore.session

    _share_parsed_models()
    with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
        for argv in WARM_UP:
            awscli.clidriver.create_clidriver().main(argv)
    session = botocore.session.get_session()
    for service in ("s3", "sts"):  # the endpoint rule sets and partitions, too
        session.create_client(
            service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )


def _receive(conn: socket.socket) -> tuple[dict[str, object], list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    size = int.from_bytes(data[:8], "big")
    body = data[8:]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("the client went away mid-request")
        body += chunk
    return json.loads(body), fds


def _rehome(home: str) -> None:
    """Module constants the CLI computed from $HOME at import (its assumed-role credential
    cache, ~/.aws/cli/cache, among them) were the server's: make them the caller's. The
    server's HOME is a directory of its own that nothing else names, so that a path missed
    here would show up there (tests/test_aws_cli_fork.py looks)."""
    server_home = SERVER_HOME[0]
    for name, module in list(sys.modules.items()):
        if module is None or name.partition(".")[0] not in ("awscli", "botocore", "s3transfer"):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, str) and value.startswith(server_home):
                setattr(module, attr, home + value[len(server_home) :])


def _run_child(request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: become the caller's `aws` process, run the CLI, exit with its code."""
    import awscli
    import awscli.clidriver

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    env = dict(request["env"])  # type: ignore[call-overload]
    os.environ.clear()
    os.environ.update(env)
    os.chdir(str(request["cwd"]))
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
    _rehome(str(Path("~").expanduser()))
    sys.argv = list(request["argv"])  # type: ignore[call-overload]
    code = 255
    try:
        code = awscli.clidriver.main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


SERVER_HOME = [""]


def serve(path: str) -> None:
    SERVER_HOME[0] = os.environ["HOME"]
    _warm_up()
    sys.stdout.flush()
    sys.stderr.flush()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "wake")
    children: dict[int, socket.socket] = {}
    print("ready", flush=True)
    while True:
        for key, _events in selector.select():
            if key.data == "accept":
                conn, _ = listener.accept()
                try:
                    request, fds = _receive(conn)
                except (OSError, ValueError):
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    for fd in (listener, conn, *children.values()):
                        fd.close()
                    selector.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    _run_child(request, fds)
                for fd in fds:
                    os.close(fd)
                conn.sendall(f"{pid}\n".encode())
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
            conn = children.pop(pid)
            with contextlib.suppress(KeyError):
                selector.unregister(conn)
            if os.WIFSIGNALED(status):
                answer = f"signal {os.WTERMSIG(status)}\n"
            else:
                answer = f"exit {os.waitstatus_to_exitcode(status)}\n"
            with contextlib.suppress(OSError):
                conn.sendall(answer.encode())
            conn.close()


@dataclass(frozen=True)
class ForkedCli:
    bin_dir: Path
    """Its `aws` runs the CLI through the fork server: put it first on PATH."""
    server: int
    """The server's pid: each running call is a child of it."""
    server_home: Path
    """The server's own HOME: nothing a call does may land there."""

    def running(self) -> set[int]:
        """The calls the server is running now (its children)."""
        tasks = Path(f"/proc/{self.server}/task")
        return {int(p) for t in tasks.iterdir() for p in (t / "children").read_text().split()}


@contextlib.contextmanager
def forked_aws_cli(directory: Path) -> Iterator[ForkedCli]:
    """An `aws` that runs the CLI through a fork server, for as long as the block lasts."""
    path = str(directory / "aws.sock")
    home = directory / "server-home"
    home.mkdir()
    server = subprocess.Popen(
        [sys.executable, __file__, path],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(home)},
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the aws CLI fork server did not start")
        bin_dir = directory / "bin"
        bin_dir.mkdir()
        client = bin_dir / "aws"
        client.write_text(CLIENT.format(python=sys.executable, socket=path))
        client.chmod(0o755)
        yield ForkedCli(bin_dir, server.pid, home)
    finally:
        server.kill()
        server.wait(timeout=30)
        Path(path).unlink(missing_ok=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C ends the tests, which end this
    serve(sys.argv[1])
