"""The database backend of read replicas (``DATABASE_REPLICA_URLS``; base.py)."""
