"""bench.ingest.stages: py-spy's collapsed stacks of the collector, summed by ingest stage."""

from __future__ import annotations

from bench.ingest import stages


def test_samples_go_to_the_first_stage_whose_frame_is_in_the_stack():
    api = "ingest (/w/server/api.py:75)"
    store = "Store.ingest (/w/server/store.py:220)"
    collapsed = "\n".join([
        f"Thread 1;run (a.py:1);{api};{store};Store._judge (/w/server/store.py:250);Correlator.run (/w/server/correlation.py:120);"
        "insert_alerts (/w/server/alerts.py:150) 30",  # alerts a correlation raises are correlation
        f"Thread 1;run (a.py:1);{api};{store};Store._judge (/w/server/store.py:250);EventEngine.matches (/w/rules/engine.py:90) 20",
        f"Thread 1;run (a.py:1);{api};{store};insert_new (/w/server/database.py:80) 10",
        f"Thread 1;run (a.py:1);{api};{store};writing (/w/server/database.py:60);DefaultDialect.do_commit (/v/default.py:9) 10",
        f"Thread 1;run (a.py:1);{api};EventIn.to_event (/w/server/models.py:140) 10",
        "Thread 2;RequestLimits.__call__ (/w/server/limits.py:130);json_shape (/w/server/limits.py:60) 15",
        "Thread 2;serve (uvicorn.py:1);handle (h11.py:5) 5",
        "Thread 3;run (threading.py:1002);wait (threading.py:331) 99",  # parked: left out
        "not a stack line",
    ])
    assert stages(collapsed, batches=2, rate=100) == (
        "busy 500 ms a batch: commit (fsync included) 50 ms (10%); events insert 50 ms (10%); correlation 150 ms (30%); "
        "rule evaluation 100 ms (20%); request to events (EventIn.stored: event, body, chain digest) 50 ms (10%); "
        "body scan (server/limits.py json_shape) 75 ms (15%); HTTP, ASGI and middleware 25 ms (5%)"
    )
    assert stages("", batches=2) == ""
