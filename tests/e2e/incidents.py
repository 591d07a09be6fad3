"""Finding a file's alert when egress is grouped into incidents (server/incidents.py): the files one
user writes to one place within the session window are ONE alert, named after its most telling
category, whose explanation names its first file only; the others are its files (and the rules that
matched each are their facets)."""

from __future__ import annotations

from tests.e2e.harness import Deployment


def files_of(d: Deployment, alert: dict) -> list[dict]:
    """Every file of an incident, in arrival order (all pages)."""
    files, page = [], 1
    while True:
        got = d.get(f"/api/v1/alerts/{alert['id']}/files", page=page, per_page=1000)
        files += got["files"]
        if page >= got["pages"]:
            return files
        page += 1


def alerts_with_file(d: Deployment, name: str, category: str | None = None) -> list[dict]:
    """Alerts whose explanation names `name`, or incidents holding a file whose path does; with
    `category`, only those of it or holding a file it matched (a facet)."""
    found = []
    for a in d.alerts():
        files = files_of(d, a) if a.get("kind") == "incident" else []
        if files:  # read again after its files: the list's row may predate a file that joined since
            a = d.get(f"/api/v1/alerts/{a['id']}")  # (its facet seen, its severity not yet); never the reverse
        facets = {x["category"] for f in files for x in f["facets"]}
        if category and a["category"] != category and category not in facets:
            continue
        if name in a["explanation"] or any(name in (f["path"] or "") for f in files):
            found.append(a)
    return found
