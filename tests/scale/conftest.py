"""The scale proofs run against scripts/topology.py's servers; without them they skip."""
import pytest

from tests.scale.topology import state


@pytest.fixture(scope="session")
def topology():
    found = state()
    if not found:
        pytest.skip("the topology is not running (python3 scripts/topology.py start; see docs/scaling.md)")
    return found
