"""pytest plugins of the suite (registered once in tests/conftest.py): fixtures every test file uses by name."""
