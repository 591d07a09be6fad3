"""The collector's heap after start-up: frozen, and the garbage collector's youngest generation
sized for a batch (issue 21).

What is alive once the app is built (modules, the app, SQLAlchemy's tables, the compiled policy)
lives as long as the process: gc.freeze() moves it out of the collector's way, so a full
collection walks only what requests made (it took 90-135 ms with it, every few batches: a cause
of the ingest p99).

A batch of 500 events keeps some 10,000 container objects alive until it is stored (the decoded
models, the events, their bodies' dicts, the rows). With Python's default youngest generation of
700 objects, each batch ran about fourteen young and one or two middle collections, each walking
the batch's objects again: 4-6 ms of a 60-70 ms batch, up to 13 ms for one collection. A youngest
generation of YOUNG_OBJECTS runs about one collection every two batches; the objects of a batch
are freed by their reference counts when it is answered, and a cycle waits at most that long.
"""

from __future__ import annotations

import gc

YOUNG_OBJECTS = 10_000  # allocations (less deallocations) of container objects between young collections


def settle() -> None:
    """Collect, freeze what is alive, and size the youngest generation (the older two keep
    Python's thresholds). Once, after start-up, in the process that serves requests or forks the
    workers (they inherit both); not in create_app, which the tests call many times in one process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
