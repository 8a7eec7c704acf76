"""The vocabulary every layer shares: entity scopes, the filter language, memory changes, jobs.

Nothing here does I/O or imports SQLAlchemy, FastAPI or a vendor SDK, so `api`, `services`,
`pipeline`, `storage` and `providers` can all use these types without importing each other.
"""
