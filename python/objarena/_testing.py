"""Test hooks of the C extension (test-only, not public API).

- ``fail_os_alloc(n)``: make the n-th next OS allocation of the arena core fail
  (0 switches the injector off).
- ``os_alloc_count()``: OS allocations made by the arena core so far.
- ``work_bytes()``: (working memory of the arena core and the collector in use now,
  its peak since the last call): the work space of a collection.
- ``validate(arena)``: run the arena's invariant validator; AssertionError with the
  reason when an invariant is broken.

A hook is present only when the extension was built with it.
"""
from . import _objarena

__all__ = []

for _public, _names in (
    ("fail_os_alloc", ("_fail_os_alloc", "fail_os_alloc")),
    ("os_alloc_count", ("_os_alloc_count", "os_alloc_count")),
    ("validate", ("_validate", "validate")),
    ("work_bytes", ("_work_bytes", "work_bytes")),
):
    for _n in _names:
        if hasattr(_objarena, _n):
            globals()[_public] = getattr(_objarena, _n)
            __all__.append(_public)
            break
del _public, _names, _n
