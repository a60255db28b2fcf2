"""Shared fixtures: the bundled demo model, the `concord` command (the oracle the bindings are
checked against) and one loaded model for the whole session."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _path(env, default):
    return pathlib.Path(os.environ.get(env, str(ROOT / default)))


DEMO = _path("CONCORD_DEMO_MODEL", "models/demo")
CLI = _path("CONCORD_BIN", "target/release/concord")


@pytest.fixture(scope="session")
def demo_dir():
    return DEMO


@pytest.fixture(scope="session")
def model():
    import concord

    return concord.Model.load(str(DEMO))


@pytest.fixture(scope="session")
def cli():
    """Runs `concord ARGS... --model DEMO` and returns its stdout (bytes)."""
    if not CLI.exists():
        pytest.fail(f"{CLI} not found: build it (cargo build --release) or set CONCORD_BIN")

    def run(*args):
        done = subprocess.run(
            [str(CLI), *args, "--model", str(DEMO)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done.stdout

    return run
