"""`python -m bench.bytelineage` runs end to end on a few of the machine's own files and prints
its two tables: what it traced among the negatives, and the edited copies it traced."""

from __future__ import annotations

from bench import bytelineage


def test_the_study_runs_and_traces_edited_copies(capsys):
    assert bytelineage.main(["--per-genre", "6", "--seed", "3"]) == 0
    said = capsys.readouterr().out
    assert "classified files of 10 genres" in said and "negatives traced" in said
    rows = [line for line in said.splitlines() if line.startswith("| a byte put in front |")]
    assert rows, said
    traced, of = rows[0].split("|")[2].split("(")[0].strip().split("/")
    assert int(of) > 0 and int(traced) >= 0.8 * int(of)  # one byte in front: (nearly) every sketched file is found
