"""Unit and integration tests of the dashboard (apps/dashboard)."""
