"""Print what CPython's own typed member descriptors (PyMemberDef T_DOUBLE ... T_BOOL) do
on the running interpreter, beside objarena's typed fields.

csrc/typed.c explains why typed fields use a descriptor of their own rather than these
members; this script is the evidence, per version:

    python tools/member_semantics.py            # on each of 3.10 ... 3.15

A member descriptor is made with ctypes (PyDescr_NewMember) over the 8 raw bytes of a
typed field of an objarena object, so that nothing a member writes can corrupt a
reference.  Each row: a value written, then what each member stores (read back) or
raises; "W:" marks a RuntimeWarning.
"""
import ctypes
import sys
import warnings

from objarena import SlotObj, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64, boolean


class Holder(SlotObj):
    raw: u64


class PyMemberDef(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("type", ctypes.c_int),
                ("offset", ctypes.c_ssize_t), ("flags", ctypes.c_int),
                ("doc", ctypes.c_char_p)]


MEMBERS = {"T_DOUBLE": (4, f64), "T_FLOAT": (3, f32), "T_LONGLONG": (17, i64),
           "T_INT": (1, i32), "T_SHORT": (0, i16), "T_BYTE": (8, i8),
           "T_ULONGLONG": (18, u64), "T_UINT": (11, u32), "T_USHORT": (10, u16),
           "T_UBYTE": (9, u8), "T_BOOL": (14, boolean)}


class Index:
    def __index__(self):
        return 7

    def __repr__(self):
        return "Index(7)"


VALUES = [1, 1.5, 1e300, 200, 300, -1, 70000, 2**31, 2**32 + 5, -2**63 - 1, 2**64,
          True, Index(), "x", None]

_keep = []


def member(code):
    new_member = ctypes.pythonapi.PyDescr_NewMember
    new_member.restype = ctypes.py_object
    new_member.argtypes = [ctypes.py_object, ctypes.c_void_p]
    d = PyMemberDef(b"m", code, Holder.raw.offset, 0, None)
    _keep.append(d)
    return new_member(Holder, ctypes.addressof(d))


def attempt(setter, getter):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            setter()
        except Exception as e:  # noqa: BLE001
            return type(e).__name__
        value = getter()
    return ("W:" if w else "") + repr(value)


def main():
    print(sys.version.split()[0])
    h = Holder(0)
    for name, (code, marker) in MEMBERS.items():
        d = member(code)
        ns = {}
        exec(f"class T(SlotObj):\n    x: {marker.name}\n",
             {"SlotObj": SlotObj, marker.name: marker}, ns)
        t = ns["T"](True if marker is boolean else 0)
        cells = []
        for v in VALUES:
            h.raw = 0
            mine = attempt(lambda: d.__set__(h, v), lambda: d.__get__(h))
            ours = attempt(lambda: setattr(t, "x", v), lambda: t.x)
            cells.append(f"{v!r}->{mine}" + ("" if mine == ours else f" (typed: {ours})"))
        h.raw = 0
        try:
            d.__delete__(h)
            deleted = "ok"
        except Exception as e:  # noqa: BLE001
            deleted = f"{type(e).__name__}: {e}"
        print(f"{name:12} {marker.name:8} " + "; ".join(cells) + f"; del -> {deleted}")


if __name__ == "__main__":
    main()
