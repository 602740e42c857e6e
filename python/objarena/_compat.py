"""What objarena needs of the running interpreter, checked before its C extension loads.

Free-threaded CPython (built with ``Py_GIL_DISABLED``, 3.13t and later) is refused,
whether or not its GIL happens to be on: the collector traverses foreign objects (lists,
dicts, instances) and reads their reference counts, which is only safe while no other
thread can run, and CPython offers extensions no way to stop the world.  The build flag
is read from ``sysconfig`` (what the interpreter was built with), not from
``sys._is_gil_enabled()`` (whether the GIL is on right now).  The C extension refuses the
same builds at compile time (``#ifdef Py_GIL_DISABLED`` in module_exec); this check gives
the same clear ImportError before anything of it is loaded.
"""
import sysconfig

FREE_THREADED = (
    "objarena does not support the free-threaded build of CPython: its collector "
    "cannot stop the world to traverse foreign objects safely"
)


def is_free_threaded_build():
    """Was the running CPython built free-threaded (``Py_GIL_DISABLED``)?"""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def check_interpreter():
    """Raise ImportError if objarena cannot run on this interpreter."""
    if is_free_threaded_build():
        raise ImportError(FREE_THREADED, name="objarena")
