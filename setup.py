"""The optional C extensions of agent.content: _winnow (the hot loops of winnowing and of reading
OOXML members), _pdftext (the loop over a PDF content stream's tokens), _pdflayout (a PDF page's
layout), _zipend (the search for a zip's end record in an opaque file's tail) and _chunks (the
content-defined chunks of a file's bytes, agent/content/chunks.py); of agent: _lane (a lane's
files hashed and looked at in batches) and _restat (the re-check's lstats of many files); everything else
is in setup.cfg. optional=True: where no compiler or Python headers exist the install goes on
without them, and the same results come from Python: winnow_fast.py's numpy passes (the same
fingerprints), ooxml.py's and xmlscan.py's regex paths (the same text), pdf_content.py's token
loop (the same text objects), pdf_layout.py's PageLayout (the same page text), zipread.py's `in`
(the same answer), lanes.py's and pipeline.py's per-file Python (the same answers).
MIWEI_PURE_WHEEL=1 builds without them: packaging/build.py uses that for the wheel of the other
platforms (aarch64, Windows), which no compiler here can target."""

import os

from setuptools import Extension, setup

native = (
    []
    if os.environ.get("MIWEI_PURE_WHEEL") == "1"
    else [
        Extension("agent.content._winnow", ["agent/content/_winnow.c"], optional=True, extra_compile_args=["-O3"]),
        # -ffp-contract=off: no fused multiply-add, so the matrices come out as Python's floats do
        Extension(
            "agent.content._pdftext",
            ["agent/content/_pdftext.c"],
            depends=["agent/content/_pdfpage.h"],  # the page of records the two share
            optional=True,
            extra_compile_args=["-O2", "-ffp-contract=off"],
        ),
        Extension(
            "agent.content._zipend",
            ["agent/content/_zipend.c"],
            depends=["agent/content/_runs.h"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "agent.content._chunks",
            ["agent/content/_chunks.c"],
            depends=["agent/content/_chunkcore.h"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
        # the lane's digest of a batch of files (agent/lanes.py): SHA-256 through OpenSSL's libcrypto,
        # the library hashlib itself uses (its headers: libssl-dev)
        Extension(
            "agent._lane",
            ["agent/_lane.c"],
            depends=["agent/content/_chunkcore.h", "agent/content/_runs.h"],
            libraries=["crypto"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        # the re-check's looks at many reported files in one call (agent/pipeline.py)
        Extension("agent._restat", ["agent/_restat.c"], optional=True, extra_compile_args=["-O2"]),
        Extension(
            "agent.content._pdflayout",
            ["agent/content/_pdflayout.c"],
            depends=["agent/content/_pdfpage.h"],  # the page of records the two share
            optional=True,
            extra_compile_args=["-O2", "-ffp-contract=off"],
        ),
    ]
)
setup(ext_modules=native)
