"""The short soak (default suite): every fault kind fires at least once, Weaviate SIGKILLed and
compound faults included, during a backfill of over 10,000 rows; nothing is lost."""

from __future__ import annotations

import pytest

from tests.soak.harness import FAULT_KINDS, Soak


@pytest.mark.timeout(900)
def test_short_soak_every_fault_kind_and_exact_equality(tmp_path):
    result = Soak(tmp_path / "soak", duration=90, seed=3, rate=30, workers=3, conversations=1000,
                  fault_every=4.0, backfill_rate=300).run()
    assert set(FAULT_KINDS) <= result.kinds(), result.faults
    assert not [f for f in result.faults if f[1] == "injector_error"], result.faults
    assert result.rows_compared > 100


@pytest.mark.slow
@pytest.mark.timeout(3 * 3600)
def test_long_soak(tmp_path):
    result = Soak(tmp_path / "soak", duration=1800, seed=1, fault_every=20.0).run()
    assert set(FAULT_KINDS) <= result.kinds()
