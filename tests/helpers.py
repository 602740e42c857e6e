"""Helpers shared by the test modules."""


def raised(fn, *args, **kwargs):
    """(type, message) of what fn(*args, **kwargs) raises; None if nothing."""
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the point is to compare them
        return type(e), str(e)
    return None
