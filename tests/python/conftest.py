"""Shared pytest setup for the Python tests.

* ``import ingot`` is the *installed* package (``make test`` builds the wheel and installs it
  into ``.venv``); importing it from the source tree instead fails the run;
* ``ingot_bin`` gives the CLI binary: ``$INGOT_BIN`` or ``<repo>/target/debug/ingot``. Tests
  that need it are skipped when it does not exist, unless ``INGOT_REQUIRE_CLI=1`` (as CI sets),
  in which case they fail.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_sessionstart(session: pytest.Session) -> None:
    import ingot

    where = Path(ingot.__file__).resolve()
    if REPO / "python" in where.parents:
        raise pytest.UsageError(
            f"ingot is imported from the source tree ({where}); install the wheel (make test)"
        )


def pytest_configure(config: pytest.Config) -> None:
    # Small max_iter values keep the suite fast; convergence is irrelevant to export fidelity.
    config.addinivalue_line("filterwarnings", "ignore::sklearn.exceptions.ConvergenceWarning")
    # Expected in the cases with unseen categories and all-missing training columns.
    config.addinivalue_line("filterwarnings", "ignore:Found unknown categories:UserWarning")
    config.addinivalue_line("filterwarnings", "ignore:Skipping features without any:UserWarning")


@pytest.fixture(scope="session")
def ingot_bin() -> Path:
    path = Path(os.environ.get("INGOT_BIN", REPO / "target" / "debug" / "ingot"))
    if not path.is_file():
        message = f"ingot CLI not found at {path} (build it with `cargo build -p ingot-cli`)"
        if os.environ.get("INGOT_REQUIRE_CLI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def run_cli(ingot_bin: Path):
    """Run ``ingot ARGS...``; returns the CompletedProcess (check=False)."""

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ingot_bin), *(str(a) for a in args)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run
