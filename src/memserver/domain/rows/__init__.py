"""The rows the repositories return, described for the type checker: one module per feature.

Repositories hand back SQLAlchemy `Row` objects as they come off the wire (no copy into dataclasses:
list and search pages stay as fast as the driver makes them). These protocols name the columns each
kind of row carries, so serializers and services read them typed; a repository `cast`s its result to
one of them, which costs nothing at run time. They live here, not in `storage/`, because the HTTP edge
reads rows too and may not import storage.

A new feature adds `domain/rows/<feature>.py`; this package re-exports nothing, so an import names the
feature a row belongs to.
"""
