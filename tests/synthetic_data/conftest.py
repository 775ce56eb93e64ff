import pytest

from synthetic_data import make_cohort


@pytest.fixture(scope="session")
def cohort():
    """A default-shaped cohort shared by the read-only tests."""
    return make_cohort(6000, random_state=11)


@pytest.fixture(scope="session")
def big_clean():
    """Enough patients for stable associations (clean data; associations live in truth)."""
    return make_cohort(30000, defects=None, random_state=2024)
