"""Tools above the four apps: the demo seed and the index proof (``explain_plans``).

The only package that may import every app (accounts, jobs, payments, ratings);
no app imports it (import-linter contract in pyproject.toml, run by CI)."""
