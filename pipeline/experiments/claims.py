"""Claims at the git remote: which run is making which experiment, so no two make it twice.

Before submitting, a cluster run (:mod:`pipeline.experiments.cluster`) claims each
experiment it will submit with a lightweight ref at the shared git remote,
``refs/avel-claims/<stage inputs>/<name>`` (:func:`pipeline.experiments.reuse.inputs_key`),
pointing at a commit of the empty tree whose message is ``claim <expiry> <owner>``. Git
updates a ref atomically: pushed with ``--force-with-lease`` (the ref must be absent, or
still the expired claim we read), one of two concurrent runs wins each claim and the
other finds it taken. The run renews its claims while it waits for its jobs and deletes
each one when its job ends; a run that dies leaves claims that expire after ``ttl_min``.

See ``docs/cluster.md`` (a concurrent run) for what a user sees and does.
"""

import getpass
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field

from pipeline.errors import PipelineError

NAMESPACE = "refs/avel-claims"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "avel-tables",
    "GIT_AUTHOR_EMAIL": "avel-tables@localhost",
    "GIT_COMMITTER_NAME": "avel-tables",
    "GIT_COMMITTER_EMAIL": "avel-tables@localhost",
}


def _git(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["git", *args], input=stdin, capture_output=True, text=True, env={**os.environ, **_IDENTITY}
    )
    if check and result.returncode != 0:
        raise PipelineError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result


def owner() -> str:
    """Who claims: ``user@host pid N``."""
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


@dataclass
class Claim:
    """A claim read from the remote: its commit, until when (epoch seconds), by whom."""

    sha: str
    expires: float
    owner: str

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires


@dataclass
class Claims:
    """The claims of one run at ``git_remote`` for the experiments of stage inputs ``key``.

    Args:
        git_remote: the shared bare repository (path or URL).
        key: :func:`pipeline.experiments.reuse.inputs_key` of the table's commit.
        ttl_min: minutes a claim lasts unless renewed (default 30).
    """

    git_remote: str
    key: str
    ttl_min: float = 30.0
    held: dict[str, str] = field(default_factory=dict)  # name -> our claim's commit
    renewed: float = 0.0

    def ref(self, name: str) -> str:
        return f"{NAMESPACE}/{self.key}/{name}"

    def read(self) -> dict[str, Claim]:
        """Name -> the claim at the remote of every claimed experiment of ``key``."""
        prefix = f"{NAMESPACE}/{self.key}/"
        listed = _git("ls-remote", self.git_remote, f"{prefix}*").stdout.split()
        refs = dict(zip(listed[1::2], listed[0::2], strict=True))  # ref -> sha
        if not refs:
            return {}
        _git("fetch", "-q", "--no-tags", "--no-write-fetch-head", self.git_remote, *refs)
        found = {}
        for ref, sha in refs.items():
            message = _git("cat-file", "commit", sha).stdout.split("\n\n", 1)[-1].split()
            expires = float(message[1]) if len(message) > 2 and message[0] == "claim" else 0.0
            found[ref.removeprefix(prefix)] = Claim(sha, expires, " ".join(message[2:]))
        return found

    def _commit(self) -> str:
        tree = _git("mktree", stdin="").stdout.strip()
        expires = time.time() + 60 * self.ttl_min
        message = f"claim {expires:.3f} {owner()}"
        return _git("commit-tree", tree, "-m", message).stdout.strip()

    def _push(self, leases: dict[str, str], sha: str | None) -> set[str]:
        """Set (``sha``) or delete (``None``) the claim of each name of ``leases`` (name ->
        the commit the ref must still be at, ``""`` for absent); the names that succeeded."""
        if not leases:
            return set()
        args = ["push", "--porcelain", self.git_remote]
        for name, expected in leases.items():
            args.append(f"--force-with-lease={self.ref(name)}:{expected}")
        args += [f"{sha or ''}:{self.ref(name)}" for name in leases]
        result = _git(*args, check=False)
        done = set()
        for line in result.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0] in {"*", "+", "-", " ", "="}:
                done.add(parts[1].split(":")[1].removeprefix(f"{NAMESPACE}/{self.key}/"))
        if not done and result.returncode != 0 and "[rejected]" not in result.stdout:
            raise PipelineError(f"git push {self.git_remote} (claims): {result.stderr.strip()}")
        return done

    def take(self, names: list[str]) -> dict[str, Claim]:
        """Claim ``names``; the claims of another run that still hold (name -> claim).

        An expired claim is taken over. A name another run claims at the same moment
        is read again and reported as theirs.
        """
        current = self.read()
        theirs = {n: current[n] for n in names if n in current and not current[n].expired()}
        wanted = {n: current[n].sha if n in current else "" for n in names if n not in theirs}
        sha = self._commit()
        won = self._push(wanted, sha)
        self.held.update(dict.fromkeys(won, sha))
        self.renewed = time.time()
        lost = set(wanted) - won
        if lost:
            now = self.read()
            theirs.update({n: now[n] for n in lost if n in now})
        return theirs

    def renew(self) -> None:
        """Push later expiries for our claims once a third of ``ttl_min`` has passed."""
        if not self.held or time.time() - self.renewed < 20 * self.ttl_min:
            return
        sha = self._commit()
        kept = self._push(dict(self.held), sha)
        self.held = dict.fromkeys(kept, sha)
        self.renewed = time.time()

    def release(self, names: list[str]) -> None:
        """Delete our claims of ``names`` (only where the ref is still ours)."""
        mine = {name: self.held.pop(name) for name in names if name in self.held}
        self._push(mine, None)
