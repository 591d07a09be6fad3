"""A generated file server of a Chinese pump maker, with ground truth, to measure detection on.

`build(root, seed, scale)` writes our firm's documents of every genre in its house style, other
firms' documents of the same genres (the hard negatives), derived copies of ours (renamed, zipped,
edited, pasted, re-encoded, converted by LibreOffice when it is installed), identifier files in
every storage form with controls that must not match, and real third-party files from this
machine; manifest.json labels each file. `evaluate(corpus)` runs the real agent code over it.
"""
