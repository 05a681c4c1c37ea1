"""robodetect report: a self-contained HTML page whose numbers equal the store's SQL counts."""

from __future__ import annotations

import os
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest

from robodetect.cli import main
from robodetect.detector import Result, WindowScore, call_verdict
from robodetect.report import write_report
from robodetect.store import FileMeta, ResultStore

DAY = 86400.0
T0 = 1_790_000_000.0  # 2026-09-21


def _result(label: str, p: float | None, channel: str = "mix", windows: int = 4) -> Result:
    ws = [WindowScore(2.0 * i, 2.0 * i + 2.0, min(1.0, (p or 0) + 0.01 * i)) for i in range(windows if p else 0)]
    cues = [f"cue {label} {p}"] if p else []
    return Result(label, p, 0.8, 8.0, 10.0, channel, ws, {}, cues, "test-v1", reason=None if p else "silence")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A store with every kind of row: robots in two folders over three days, humans, uncertain,
    no speech, errors with two reasons, a two-party call with the robot on the right."""
    db = tmp_path_factory.mktemp("report") / "r.db"
    rows = [("a/robot1.wav", _result("robot", 0.99), 0), ("a/robot2.wav", _result("robot", 0.95), 0)]
    rows += [("b/robot3.wav", _result("robot", 0.91), 1), ("b/robot4.wav", _result("robot", 0.85), 2)]
    rows += [(f"a/human{i}.wav", _result("human", 0.05 * i), i % 3) for i in range(5)]
    rows += [("c/unsure.wav", _result("uncertain", 0.7), 1), ("c/quiet.wav", _result("no_speech", None), 1)]
    two = call_verdict([_result("human", 0.1, "left"), _result("robot", 0.97, "right")])
    rows.append(("d/two_party.wav", two, 2))
    with ResultStore(db) as s:
        for path, result, day in rows:
            s.write_file(f"/calls/{path}", "auto", "test-v1", FileMeta(mtime=T0 + day * DAY + 3600), [result], None)
        for i, reason in enumerate(["cannot decode audio (corrupt)", "cannot decode audio (corrupt)", "file is empty"]):
            s.write_file(f"/calls/e/bad{i}.wav", "auto", "test-v1", FileMeta(), [], f"/calls/e/bad{i}.wav: {reason}")
    return db


class Page(HTMLParser):
    """Sections, tiles, table rows, every href/src, SVG <title> texts, per section."""

    def __init__(self) -> None:
        super().__init__()
        self.section, self.tiles, self.rows, self.links, self.titles = None, {}, {}, [], {}
        self.sources, self.scripts, self._tile, self._title, self._in_tbody = [], 0, None, False, False
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a["id"]
            self.sections.append(self.section)
        if tag == "div" and "data-name" in a:
            self._tile = a["data-name"]
        if tag == "tbody":
            self._in_tbody = True
        if tag == "tr" and self._in_tbody:
            self.rows[self.section] = self.rows.get(self.section, 0) + 1
        if tag == "title" and self.section:
            self._title = True
        if "href" in a:
            self.links.append(a["href"])
        if "src" in a or tag == "link":
            self.sources.append(a)
        if tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_tbody = False
        if tag == "title":
            self._title = False

    def handle_data(self, data):
        if self._tile is not None and data.strip():
            self.tiles[self._tile] = data.strip()
            self._tile = None
        if self._title:
            self.titles.setdefault(self.section, []).append(data)


def _parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _sql(db: Path, query: str):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_numbers_equal_sql(store, tmp_path):
    out = tmp_path / "report.html"
    write_report(store, out, top=3)
    page = _parse(out)
    assert page.sections == ["totals", "histogram", "folders", "days", "top", "campaigns", "errors"]
    counts = dict(_sql(store, "SELECT label, count(*) FROM calls WHERE role = 'call' GROUP BY label"))
    assert counts == {"robot": 5, "human": 5, "uncertain": 1, "no_speech": 1, "error": 3}  # the fixture itself
    for label in ("robot", "human", "uncertain", "error"):
        assert int(page.tiles[label]) == counts[label]
    assert int(page.tiles["no speech"]) == counts["no_speech"]
    assert int(page.tiles["files"]) == _sql(store, "SELECT count(DISTINCT path) FROM calls WHERE role = 'call'")[0][0]
    assert int(page.tiles["two-party calls"]) == 1 and int(page.tiles["two-party with a robot"]) == 1
    # histogram: every call with a probability once, in its verdict's colour
    hist = [re.match(r"(\w+) [\d.]+-[\d.]+: (\d+)", t) for t in page.titles["histogram"]]
    per_label: dict[str, int] = {}
    for m in hist:
        per_label[m[1]] = per_label.get(m[1], 0) + int(m[2])
    assert per_label == {"robot": 5, "human": 5, "uncertain": 1}
    folders = dict(re.match(r"(.*): (\d+)", t).groups() for t in page.titles["folders"])
    assert folders == {"/calls/a/": "2", "/calls/b/": "2", "/calls/d/": "1"}
    days = {d: int(n) for d, n in (re.match(r"(.*): (\d+)", t).groups() for t in page.titles["days"])}
    assert sum(days.values()) == 5 and len(days) == 3
    assert page.rows["top"] == 3 and page.rows["errors"] == 2  # top 3 robots; two error reasons
    html_text = out.read_text()
    first = html_text.index('id="top-table"')
    assert html_text.index("0.990", first) < html_text.index("0.970", first) < html_text.index("0.950", first)
    assert "right channel" in html_text  # the two-party robot names its party
    assert "(2 files" not in html_text and "Errors (3 files)" in html_text


def test_self_contained(store, tmp_path):
    out = tmp_path / "report.html"
    write_report(store, out)
    page = _parse(out)
    assert page.sources == []  # no <img src>, <script src>, <link>: everything inline
    assert page.scripts == 1 and all(link.startswith("file:///") for link in page.links)
    text = out.read_text()
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_cli_report(store, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(store), "-o", str(out)]) == 0
    assert out.exists() and "wrote" in capsys.readouterr().out
    assert main(["report", str(store), "-o", str(tmp_path / "no" / "such" / "r.html")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def test_empty_store_reports_nothing_found(tmp_path):
    db = tmp_path / "new.db"
    ResultStore(db).close()
    out = tmp_path / "r.html"
    data = write_report(db, out)
    assert data["files"] == 0 and "no campaigns found" in out.read_text() and os.path.getsize(out) < 20_000
