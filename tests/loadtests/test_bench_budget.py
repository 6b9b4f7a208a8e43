"""The benchmark's CPU budget attributes the machine's CPU to who spent it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from loadtests.bench import CpuBudget


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_budget_charges_the_servers_and_the_waited_load_generator_separately() -> None:
    budget = CpuBudget([os.getpid()])  # this process plays the server
    _burn(0.3)
    subprocess.run([sys.executable, "-c", "import time\nend = time.process_time() + 0.3\n"
                    "while time.process_time() < end: pass"], check=True)
    spent = budget.per_request_ms(requests=1)

    assert set(spent) == {"server", "database", "redis", "load_generator", "softirq", "other"}
    assert 250 <= spent["server"] <= 1000
    assert 250 <= spent["load_generator"] <= 1000
    # The machine's busy time covers both, so what is left for everything else stays small
    # (other people's work on a shared machine can add to it, never take from it much).
    assert spent["other"] > -100
