"""The optional C extensions agent.content._winnow (the hot loops of winnowing and of reading OOXML
members) and agent.content._pdftext (the loop over a PDF content stream's tokens: without it
pdf_content.py's Python loop gives the same text objects); everything else is in setup.cfg.
optional=True: where no compiler or Python headers exist the install goes on without them and agent/content/winnow_fast.py runs its numpy passes instead (the
same fingerprints), ooxml.py and xmlscan.py their regex paths (the same text).
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
            optional=True,
            extra_compile_args=["-O2", "-ffp-contract=off"],
        ),
    ]
)
setup(ext_modules=native)
