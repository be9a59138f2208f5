"""The chaos run's short variant (``make chaos`` runs the full one; tests/chaos): the loop
of two Models closes while the operator's HA pair is SIGKILLed 15 times, the API server
restarts once and Prometheus is down for 20 s, and every invariant holds. It starts its own
control plane: it restarts the API server."""

import gc
import os
import warnings
from pathlib import Path

import pytest
from tests.chaos.plan import SHORT, make_plan
from tests.chaos.run import Chaos, ChaosFailed

SEED = 1


@pytest.mark.timeout(420)
def test_the_loop_closes_through_kills_an_api_server_restart_and_a_prometheus_outage(
    tmp_path: Path,
) -> None:
    if os.environ.get("MODELLOOP_TEST_KUBECONFIG"):
        pytest.skip("restarts the API server: needs the local control plane")
    chaos = Chaos(tmp_path, SHORT, make_plan(SHORT, SEED))
    try:
        figures = chaos.run()
    except ChaosFailed:
        for log in chaos.operator_logs():
            print(f"--- {log} (last lines)\n" + "\n".join(log.read_text().splitlines()[-40:]))
        raise
    finally:
        chaos.close()
        # Connections the SIGKILLed API servers broke may still wait in the clients' pools:
        # finalise them here, where they belong, not in whichever test runs next.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    print(figures.render())
    assert not figures.violations, "\n".join(v.render() for v in figures.violations)
