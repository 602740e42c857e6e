"""Build the C extension objarena._objarena.

Extra compiler and linker flags (sanitizers, -Werror, -O0 -g for valgrind) come
from the environment variables OBJARENA_CFLAGS and OBJARENA_LDFLAGS, so that the
reliability stages of .ci/run build the same sources with other settings.
"""
import os
import shlex
import sysconfig

from setuptools import Extension, setup

SOURCES = ["csrc/arena.c", "csrc/module.c", "csrc/types.c", "csrc/typed.c", "csrc/obj.c",
           "csrc/gc.c", "csrc/gcmodule.c"]

cflags = ["-Wall", "-Wextra", "-std=c11", "-fno-strict-aliasing"]
# A Py_DEBUG interpreter gets the invariant checks (OA_ASSERT) too.
if sysconfig.get_config_var("Py_DEBUG"):
    cflags.append("-DOA_DEBUG")
cflags += shlex.split(os.environ.get("OBJARENA_CFLAGS", ""))
ldflags = shlex.split(os.environ.get("OBJARENA_LDFLAGS", ""))

setup(
    ext_modules=[
        Extension(
            "objarena._objarena",
            sources=SOURCES,
            include_dirs=["csrc"],
            depends=["csrc/arena.h", "csrc/objarena.h"],
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        )
    ],
)
