"""EgressPlaces.find: the first root holding a path, longest first (FAST_FIND), against every
place's test and a max() over them (find_reference): the same place for any set of roots (nested,
equal lengths, a trailing slash, "/", added again or removed) and any path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.places import EgressPlace, EgressPlaces

PARTS = ["a", "b", "ab", "a.b", "mnt", "usb"]
ROOTS = st.builds(
    lambda parts, tail: "/" + "/".join(parts) + tail,
    st.lists(st.sampled_from(PARTS), max_size=3),
    st.sampled_from(["", "/"]),
)
OPS = st.lists(
    st.tuples(st.sampled_from(["add", "add", "remove"]), ROOTS, st.sampled_from(["folder", "removable"])), max_size=12
)
PATHS = st.builds(
    lambda parts, tail: "/" + "/".join(parts) + tail,
    st.lists(st.sampled_from(PARTS + ["x.bin"]), max_size=5),
    st.sampled_from(["", "/"]),
)


@settings(max_examples=400, deadline=None)
@given(ops=OPS, paths=st.lists(PATHS, min_size=1, max_size=10))
def test_find_gives_the_place_the_reference_gives(ops, paths):
    places = EgressPlaces()
    for op, root, kind in ops:
        if op == "add":
            places.add(EgressPlace(root, kind))
        else:
            places.remove(root)
    for path in paths + [root for _, root, _ in ops]:
        assert places.find(path) is places.find_reference(path), path


def test_the_longest_root_wins_and_the_first_added_of_equal_ones():
    places = EgressPlaces()
    outer, inner = EgressPlace("/media", "removable"), EgressPlace("/media/usb/", "folder")
    for place in (outer, inner, EgressPlace("/media/usb", "share")):
        places.add(place)
    assert places.find("/media/usb/x.bin") is inner  # "/media/usb/" is the longer root
    assert places.find("/media/other/x.bin") is outer
    places.remove("/media/usb/")
    assert places.find("/media/usb/x.bin").kind == "share"
    assert places.find("/elsewhere") is None


def test_a_held_place_is_kept_whatever_its_age_or_the_places_removed_after_it(monkeypatch):
    """A place whose folder still drains (agent/inotify.py) is held: neither GONE_KEEP_S nor
    GONE_KEPT forgets it; released, it is kept as any other removed place is."""
    from agent import places as places_module

    monkeypatch.setattr(places_module, "GONE_KEPT", 3)
    places = EgressPlaces()
    stick = EgressPlace("/media/leak", "removable")
    places.add(stick)
    places.hold("/media/leak")
    places.remove("/media/leak")
    for i in range(5):
        places.add(EgressPlace(f"/media/img{i}", "removable"))
        places.remove(f"/media/img{i}")
    assert places.find_gone("/media/leak/drawing.dwg", drained=True) is stick
    assert places.find_gone("/media/img0/x", drained=True) is None  # the oldest unheld ones went
    assert places.find_gone("/media/img4/x", drained=True) is not None
    monkeypatch.setattr(places_module, "GONE_KEEP_S", 0.0)
    assert places.find_gone("/media/leak/drawing.dwg", drained=True) is stick
    places.hold("/media/leak")  # held twice (unwatched again before its first drain ended)
    places.release("/media/leak")
    assert places.find_gone("/media/leak/drawing.dwg", drained=True) is stick
    places.release("/media/leak")
    assert places.find_gone("/media/leak/drawing.dwg", drained=True) is None  # released, then too old
    places.release("/media/leak")  # one release too many changes nothing
    places.hold("/media/leak")
    assert places.find_gone("/media/leak/drawing.dwg", drained=True) is stick
