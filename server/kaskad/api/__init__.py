"""The REST API under ``/api/v1``. Every module here that defines ``routes`` is mounted."""
