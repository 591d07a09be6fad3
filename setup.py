"""The optional C extensions agent.content._winnow (the hot loops of winnowing and of reading OOXML
members) and agent._egress (a pipeline step's egress files read and hashed in one call);
everything else is in setup.cfg. optional=True: where no compiler or Python headers exist
the install goes on without it and agent/content/winnow_fast.py runs its numpy passes instead (the
same fingerprints), ooxml.py and xmlscan.py their regex paths (the same text).
MIWEI_PURE_WHEEL=1 builds without it: packaging/build.py uses that for the wheel of the other
platforms (aarch64, Windows), which no compiler here can target."""

import os

from setuptools import Extension, setup

native = (
    []
    if os.environ.get("MIWEI_PURE_WHEEL") == "1"
    else [
        Extension("agent.content._winnow", ["agent/content/_winnow.c"], optional=True, extra_compile_args=["-O3"]),
        # the closed writes of a pipeline step read and hashed in one call (agent/readbatch.py);
        # libcrypto is the OpenSSL hashlib links here. Without it the pipeline reads them in Python.
        Extension("agent._egress", ["agent/_egress.c"], optional=True, extra_compile_args=["-O2"], libraries=["crypto"]),
    ]
)
setup(ext_modules=native)
