"""Small generated fixtures for the test suite (never downloaded)."""
