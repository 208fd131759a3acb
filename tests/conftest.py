"""Fixtures live in tests/fixtures/ (one module per real part), loaded as plugins here."""

pytest_plugins = [
    "tests.fixtures.fail2ban",
    "tests.fixtures.app",
    "tests.fixtures.processes",
    "tests.fixtures.clock",
    "tests.fixtures.blocklist_server",
    "tests.fixtures.disk",
    "tests.fixtures.f2b_config",
]
