"""``robodetect report RESULTS.db -o report.html``: one self-contained HTML page about a scan.

No network and no external files: charts are inline SVG drawn here (no plotting library needed),
tables sort with a few lines of inline JavaScript. Every number comes from an SQL aggregate over the
store, so a million-row store renders in seconds; only the top-N calls' per-window timelines and the
campaigns read rows. Sections (each a ``<section id=...>``; tests parse them): ``totals``,
``histogram``, ``folders``, ``days``, ``top`` (most robotic calls with timelines and cues),
``campaigns``, ``errors``.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from urllib.parse import quote

from .plot import HUMAN_COLOR, LABEL_COLORS, ROBOT_COLOR, UNCERTAIN_COLOR
from .store import LABELS, connect, error_reason, fs_path

HIST_BINS = 50
CALLS = "role = 'call'"
FOLDER = "rtrim(path, replace(path, '/', ''))"  # SQLite has no dirname(): strip the last component


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _file_link(path: str) -> str:
    uri = "file://" + quote(os.path.abspath(path))
    return f'<a href="{_e(uri)}">{_e(path)}</a>'


# ---- inline SVG -----------------------------------------------------------------------------
def svg_bars(
    rows: list[tuple[str, float]], *, color: str = ROBOT_COLOR, width: int = 640, bar: int = 16, unit: str = ""
) -> str:
    """Horizontal bar chart: one labelled bar per (label, value)."""
    if not rows:
        return "<p>nothing to show</p>"
    top = max(v for _, v in rows) or 1.0
    label_w, height = 260, bar * len(rows) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, value) in enumerate(rows):
        y = i * bar + 2
        w = (width - label_w - 70) * value / top
        short = label if len(label) <= 40 else "..." + label[-37:]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar - 4}" text-anchor="end" font-size="11">{_e(short)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 3}" fill="{color}"><title>{_e(label)}: '
            f"{value:g}{unit}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 4}" font-size="11">{value:g}{unit}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_histogram(counts: dict[str, list[int]], *, threshold: float | None, width: int = 640, height: int = 220) -> str:
    """Stacked histogram of robot probability (HIST_BINS bins over 0..1), one colour per verdict."""
    bins = len(next(iter(counts.values()))) if counts else HIST_BINS
    totals = [sum(c[i] for c in counts.values()) for i in range(bins)]
    top = max(totals, default=0) or 1
    left, bottom, plot_w, plot_h = 40, 24, width - 50, height - 40
    bw = plot_w / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i in range(bins):
        y = bottom + plot_h
        for label, c in counts.items():
            if not c[i]:
                continue
            h = plot_h * c[i] / top
            y -= h
            parts.append(
                f'<rect x="{left + i * bw:.1f}" y="{y:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                f'fill="{LABEL_COLORS.get(label, "#777")}"><title>{label} {i / bins:.2f}-{(i + 1) / bins:.2f}: '
                f"{c[i]}</title></rect>"
            )
    if threshold is not None:
        x = left + plot_w * threshold
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + plot_h}" stroke="{ROBOT_COLOR}" '
            f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="{bottom + 10}" font-size="11">threshold '
            f"{threshold:.3f}</text>"
        )
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        x = left + plot_w * v
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" font-size="11" text-anchor="middle">{v:g}</text>')
    parts.append(f'<text x="2" y="{bottom + 4}" font-size="11">{top}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.0f}" y="14" font-size="11" text-anchor="middle">calls by robot probability</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def svg_timeline(
    windows: list[tuple[float, float, float]], duration: float, threshold: float, *, width: int = 360, height: int = 60
) -> str:
    """Per-window robot probability over the call (a sparkline with the threshold)."""
    duration = max(duration, max((b for _, b, _ in windows), default=0.0), 1e-3)
    points = " ".join(
        f"{width * (a + b) / 2 / duration:.1f},{height - 4 - (height - 8) * p:.1f}" for a, b, p in windows
    )
    y_thr = height - 4 - (height - 8) * threshold
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
        f'<rect width="{width}" height="{height}" fill="#f4f4f4"/>'
        f'<line x1="0" x2="{width}" y1="{y_thr:.1f}" y2="{y_thr:.1f}" stroke="{ROBOT_COLOR}" stroke-dasharray="4 3"/>'
        f'<polyline points="{points}" fill="none" stroke="#000" stroke-width="1.5"/>'
        f'<text x="2" y="{height - 2}" font-size="10">0 s</text>'
        f'<text x="{width - 2}" y="{height - 2}" font-size="10" text-anchor="end">{duration:.0f} s</text></svg>'
    )


# ---- the page -------------------------------------------------------------------------------
SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[idx].dataset.v || a.cells[idx].textContent, y = b.cells[idx].dataset.v || b.cells[idx].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""
STYLE = (
    """
body{font-family:system-ui,sans-serif;margin:24px;color:#111;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:left;
vertical-align:top}th{cursor:pointer;background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.tiles{display:flex;flex-wrap:wrap;gap:10px}.tile{border:1px solid #ccc;border-radius:6px;padding:8px 14px;min-width:90px}
.tile b{display:block;font-size:22px}
ul.cues{margin:0;padding-left:16px;font-size:12px}.note{color:#555;font-size:12px}
"""
    + f".robot{{color:{ROBOT_COLOR}}}.human{{color:{HUMAN_COLOR}}}.uncertain{{color:#8a5a00}}"
)


def _table(headers: list[str], rows: list[list[str]], *, table_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in r) + "</tr>" for r in rows)
    return f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(value: object, *, numeric: bool = False, raw: bool = False, sort: object = None) -> str:
    cls = ' class="n"' if numeric else ""
    key = f' data-v="{_e(sort)}"' if sort is not None else ""
    return f"<td{cls}{key}>{value if raw else _e(value)}</td>"


def gather(conn, *, top: int) -> dict:
    """Every number of the report, aggregated in SQL."""
    q = conn.execute
    labels = dict(q(f"SELECT label, count(*) FROM calls WHERE {CALLS} GROUP BY label").fetchall())
    files, seconds = q(
        f"SELECT count(DISTINCT path), coalesce(sum(duration_seconds), 0) FROM calls WHERE {CALLS}"
    ).fetchone()
    models = q(
        f"SELECT model_version, count(*), min(threshold), max(threshold) FROM calls WHERE {CALLS} "
        "GROUP BY model_version ORDER BY count(*) DESC"
    ).fetchall()
    two_party = q(
        f"SELECT count(*), coalesce(sum(label = 'robot'), 0) FROM calls WHERE {CALLS} AND channel = 'call'"
    ).fetchone()
    hist: dict[str, list[int]] = {}
    for label, b, n in q(
        f"SELECT label, min(CAST(robot_probability * {HIST_BINS} AS INTEGER), {HIST_BINS - 1}), count(*) "
        f"FROM calls WHERE {CALLS} AND robot_probability IS NOT NULL GROUP BY 1, 2"
    ):
        hist.setdefault(label, [0] * HIST_BINS)[b] += n
    folders = q(
        f"SELECT {FOLDER} AS folder, count(*) FROM calls WHERE {CALLS} AND label = 'robot' "
        "GROUP BY folder ORDER BY count(*) DESC, folder LIMIT 25"
    ).fetchall()
    days = q(
        f"SELECT date(mtime, 'unixepoch') AS day, count(*) FROM calls WHERE {CALLS} AND label = 'robot' "
        "AND mtime IS NOT NULL GROUP BY day ORDER BY day DESC LIMIT 60"
    ).fetchall()[::-1]
    top_rows = q(
        f"SELECT id, path, party, robot_probability, duration_seconds, speech_seconds, cues, threshold FROM calls "
        f"WHERE {CALLS} AND label = 'robot' ORDER BY robot_probability DESC, path LIMIT ?",
        (top,),
    ).fetchall()
    top_calls = []
    for cid, path, party, prob, duration, speech, cues, threshold in top_rows:
        windows = q(
            "SELECT start_seconds, end_seconds, robot_probability FROM windows WHERE call_id = ? ORDER BY idx", (cid,)
        ).fetchall()
        top_calls.append(
            {
                "path": fs_path(path),
                "party": party,
                "robot_probability": prob,
                "duration_seconds": duration or 0.0,
                "speech_seconds": speech,
                "cues": json.loads(cues) if cues else [],
                "threshold": threshold,
                "windows": windows,
            }
        )
    n_errors = labels.get("error", 0)
    reasons: dict[str, list] = {}
    for path, error in q("SELECT path, error FROM calls WHERE error IS NOT NULL ORDER BY path LIMIT 20000"):
        path = fs_path(path)
        entry = reasons.setdefault(error_reason(path, error), [0, path])
        entry[0] += 1
    return {
        "files": files,
        "hours": seconds / 3600,
        "labels": labels,
        "models": models,
        "two_party": {"calls": two_party[0], "robot": two_party[1]},
        "histogram": hist,
        "folders": folders,
        "days": days,
        "top": top_calls,
        "errors": {"rows": n_errors, "reasons": sorted(reasons.items(), key=lambda kv: -kv[1][0])},
    }


def render(data: dict, campaigns: list, *, db_path: str, campaign_note: str = "") -> str:
    threshold = data["models"][0][2] if data["models"] else None
    labels = data["labels"]
    tiles = [("files", data["files"]), ("hours of audio", f"{data['hours']:.1f}")]
    tiles += [(label.replace("_", " "), labels.get(label, 0)) for label in LABELS]
    if data["two_party"]["calls"]:
        tiles.append(("two-party calls", data["two_party"]["calls"]))
        tiles.append(("two-party with a robot", data["two_party"]["robot"]))
    tile_html = "".join(
        f'<div class="tile {_e(name.split()[0])}" data-name="{_e(name)}"><b>{_e(v)}</b>{_e(name)}</div>'
        for name, v in tiles
    )
    models = ", ".join(
        f"{_e(v)} ({n} calls, threshold {lo:.3f}" + (f"-{hi:.3f}" if hi != lo else "") + ")"
        for v, n, lo, hi in data["models"]
        if lo is not None
    )
    top_rows = [
        [
            _td(i + 1, numeric=True),
            _td(f"{c['robot_probability']:.3f}", numeric=True),
            _td(
                _file_link(c["path"]) + (f" <small>({_e(c['party'])} channel)</small>" if c["party"] else ""),
                raw=True,
                sort=c["path"],
            ),
            _td(f"{c['duration_seconds']:.1f}", numeric=True),
            _td(svg_timeline(c["windows"], c["duration_seconds"], c["threshold"] or 0.5), raw=True, sort=0),
            _td("<ul class=cues>" + "".join(f"<li>{_e(x)}</li>" for x in c["cues"][:4]) + "</ul>", raw=True, sort=""),
        ]
        for i, c in enumerate(data["top"])
    ]
    camp_rows = [
        [
            _td(k + 1, numeric=True),
            _td(c.n_calls, numeric=True),
            _td(_day(c.first_seen)),
            _td(_day(c.last_seen)),
            _td(f"{c.shared_seconds:.1f}", numeric=True),
            _td("n/a" if c.mean_robot_probability is None else f"{c.mean_robot_probability:.3f}", numeric=True),
            _td("human-voiced (prerecorded: still a robocall campaign)" if c.human_voiced else "synthetic"),
            _td("<br>".join(_file_link(p) for p in c.examples), raw=True, sort=c.examples[0] if c.examples else ""),
        ]
        for k, c in enumerate(campaigns)
    ]
    error_rows = [
        [_td(n, numeric=True), _td(reason), _td(_file_link(example), raw=True, sort=example)]
        for reason, (n, example) in data["errors"]["reasons"]
    ]
    sections = [
        ("totals", "Totals", f'<div class="tiles">{tile_html}</div><p class="note">model {models or "n/a"}</p>'),
        ("histogram", "Robot probability by verdict", svg_histogram(data["histogram"], threshold=threshold)),
        ("folders", "Robot calls by folder", svg_bars([(fs_path(f) or "", n) for f, n in data["folders"]])),
        ("days", "Robot calls by day (file time)", svg_bars([(d, n) for d, n in data["days"]], color=UNCERTAIN_COLOR)),
        (
            "top",
            f"Most robotic calls (top {len(data['top'])})",
            _table(
                ["#", "robot probability", "file", "seconds", "per-window robot probability", "cues"],
                top_rows,
                table_id="top-table",
            ),
        ),
        (
            "campaigns",
            f"Campaigns: the same prompt audio in many calls ({len(campaigns)})",
            (campaign_note and f'<p class="note">{_e(campaign_note)}</p>')
            + (
                _table(
                    [
                        "#",
                        "calls",
                        "first seen",
                        "last seen",
                        "shared s",
                        "mean robot probability",
                        "voice",
                        "examples",
                    ],
                    camp_rows,
                    table_id="campaign-table",
                )
                if campaigns
                else "<p>no campaigns found</p>"
            ),
        ),
        (
            "errors",
            f"Errors ({data['errors']['rows']} files)",
            _table(["files", "reason", "example"], error_rows, table_id="error-table")
            if error_rows
            else "<p>no errors</p>",
        ),
    ]
    body = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{content}</section>' for sid, title, content in sections)
    generated = time.strftime("%Y-%m-%d %H:%M")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>robodetect report: {_e(Path(db_path).name)}'
        f"</title><style>{STYLE}</style></head><body><h1>robodetect report</h1>"
        f'<p class="note">store {_e(db_path)}, generated {generated}</p>{body}<script>{SCRIPT}</script></body></html>'
    )


def _day(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(ts)) if ts is not None else "?"


def write_report(
    db_path: str | os.PathLike, out_path: str | os.PathLike, *, top: int = 20, campaigns: int = 10, min_calls: int = 3
) -> dict:
    """Write the HTML report of a result store; returns the gathered numbers (raises like
    :func:`robodetect.store.connect` on a missing, empty, foreign or damaged store)."""
    from .campaigns import find_campaigns

    conn = connect(db_path, readonly=True)
    try:
        data = gather(conn, top=top)
    finally:
        conn.close()
    found = find_campaigns(db_path, min_calls=min_calls)
    note = (
        f"{len(found)} campaigns of {min_calls}+ calls; the biggest {campaigns} shown" if len(found) > campaigns else ""
    )
    page = render(data, found[:campaigns], db_path=os.fspath(db_path), campaign_note=note)
    Path(out_path).write_text(page, encoding="utf-8")
    data["campaigns"] = [c.summary() for c in found[:campaigns]]
    return data


__all__ = ["write_report", "gather", "render", "svg_bars", "svg_histogram", "svg_timeline"]
