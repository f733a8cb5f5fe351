"""Build the ``cxw report`` page: one self-contained HTML file from the served marts only.

Reads ``serving/cx.duckdb`` read-only; writes one HTML file with plotly's JavaScript inlined once, no
network reference (no CDN, no web font), the Okabe-Ito colour-blind-safe palette and print CSS. Every
number a test compares carries a stable ``data-cell`` attribute and its exact value in ``data-value``.
A table missing from an older served file skips its section with a visible note.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from reporting import stats

# Okabe-Ito (colour-blind safe)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MAIN_KPIS = ["nps", "csat", "ces", "fcr_rate", "on_time_delivery_rate"]
PROPORTIONS = ["csat", "fcr_rate", "on_time_delivery_rate"]
LABELS = {"nps": "NPS", "csat": "CSAT (satisfied share)", "ces": "CES (mean effort score, 1-7)",
          "fcr_rate": "First-contact resolution", "on_time_delivery_rate": "On-time delivery",
          "churn": "Monthly churn", "followup_backlog_overdue_rate": "Follow-up backlog overdue",
          "followup_breach_rate": "Follow-up breach rate"}
DIMENSIONS = ["all", "segment", "persona", "channel", "touchpoint"]
PERCENT = set(PROPORTIONS) | {"churn", "followup_backlog_overdue_rate", "followup_breach_rate"}
HIGHER_IS_BETTER = {"nps": True, "csat": True, "ces": True, "fcr_rate": True, "on_time_delivery_rate": True,
                    "churn": False}
MIN_N = 30

CSS = """
:root { --fg: #1a1a1a; --muted: #555; --line: #d0d0d0; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: #fff; margin: 0 auto; max-width: 1240px; padding: 16px 20px; }
h1 { font-size: 1.6em; margin: .2em 0; } h2 { font-size: 1.25em; border-bottom: 2px solid #0072B2;
     padding-bottom: 4px; margin-top: 1.8em; }
p.meta, p.note, .note { color: var(--muted); font-size: .9em; }
.skipped { background: #fff4d6; border-left: 4px solid #E69F00; padding: 6px 10px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(185px, 1fr)); gap: 10px; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 10px; }
.tile .name { font-size: .85em; color: var(--muted); } .tile .value { font-size: 1.7em; font-weight: 600; }
.tile .sub { font-size: .8em; color: var(--muted); } .tile.provisional { border-style: dashed; }
.tile.unreportable .value { color: var(--muted); }
.good { color: #009E73; } .bad { color: #D55E00; } .neutral { color: var(--muted); }
table { border-collapse: collapse; font-size: .85em; margin: 6px 0 12px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.chart { width: 100%; min-height: 360px; }
@media print {
  body { max-width: none; background: #fff; color: #000; padding: 0; }
  h2 { page-break-after: avoid; } .chart, .tiles, table { page-break-inside: avoid; }
  .updatemenu-container { display: none; }
}
"""


@dataclass
class ReportInfo:
    path: Path
    as_of: dt.date
    bytes: int
    seconds: float
    sections: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    charts: int = 0


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def _fmt(v: float | None, kind: str = "", digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if kind == "pct":
        return f"{100 * v:.{digits}f} %"
    if kind == "int":
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def cell(key: str, value: float | int | str | None, text: str | None = None, cls: str = "", tag: str = "td") -> str:
    """A number with its stable ``data-cell`` key and exact value (``data-value``)."""
    raw = value if isinstance(value, str) else _num(value)
    shown = text if text is not None else (value if isinstance(value, str) else _fmt(value))
    klass = f' class="{cls}"' if cls else ""
    return (f'<{tag}{klass} data-cell="{html.escape(key)}" data-value="{html.escape(str(raw))}">'
            f"{html.escape(str(shown))}</{tag}>")


class Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.charts = 0
        self._js = False

    def add(self, s: str) -> None:
        self.parts.append(s)

    def figure(self, fig, div_id: str, height: int = 380) -> None:  # noqa: ANN001 - plotly Figure
        fig.update_layout(template="plotly_white", colorway=PALETTE, height=height,
                          margin={"l": 60, "r": 20, "t": 50, "b": 50}, font={"family": "system-ui, Arial, sans-serif"})
        self.add(fig.to_html(full_html=False, include_plotlyjs=not self._js, div_id=f"chart-{div_id}",
                             config={"displaylogo": False, "responsive": True,
                                     "modeBarButtonsToRemove": ["toImage"]}))
        self._js = True
        self.charts += 1


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {t for (t,) in con.execute("select table_name from information_schema.tables "
                                      "where table_schema = 'main'").fetchall()}


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# ---------------------------------------------------------------- headline tiles


@dataclass
class Tile:
    kpi: str
    value: float | None
    n: int
    low: float | None
    high: float | None
    period: str
    change: stats.Change
    previous: float | None
    provisional: bool = False
    reportable: bool = True


def _period_sums(con, kpi: str, start: dt.date, end: dt.date) -> tuple[float, float, bool]:
    num, den, provisional = con.execute(
        "select coalesce(sum(numerator), 0), coalesce(sum(denominator), 0), coalesce(bool_or(not is_final), false) "
        "from kpi_experience_daily where kpi = ? and dimension = 'all' and kpi_date between ? and ?",
        [kpi, start, end]).fetchone()
    return float(num), float(den), bool(provisional)


def _nps_components(con, start: dt.date, end: dt.date) -> tuple[int, int, int, bool]:
    """Promoters, detractors, answers and 'any cell provisional' of the NPS cells dated start..end."""
    p, d, n, provisional = con.execute(
        "select coalesce(sum(promoters), 0), coalesce(sum(detractors), 0), coalesce(sum(n), 0), "
        "coalesce(bool_or(not is_final), false) from kpi_experience_daily "
        "where kpi = 'nps' and dimension = 'all' and kpi_date between ? and ?", [start, end]).fetchone()
    return int(p), int(d), int(n), bool(provisional)


def _mean_components(con, kpi: str, start: dt.date, end: dt.date) -> tuple[float | None, float, int, bool]:
    """Mean, sample sd, n and 'any cell provisional' of a mean KPI over start..end, pooled from the daily
    cells' n, mean and sd: sum of squares = sum((n - 1) sd^2 + n mean^2); sd = 0 when n < 2."""
    total, squares, n, provisional = con.execute(
        "select coalesce(sum(n * value), 0), coalesce(sum((n - 1) * coalesce(sd, 0) * coalesce(sd, 0) "
        "+ n * value * value), 0), coalesce(sum(n), 0), coalesce(bool_or(not is_final), false) "
        "from kpi_experience_daily where kpi = ? and dimension = 'all' and kpi_date between ? and ?",
        [kpi, start, end]).fetchone()
    n = int(n)
    if not n:
        return None, 0.0, 0, bool(provisional)
    mean = float(total) / n
    sd = math.sqrt(max(0.0, (float(squares) - n * mean * mean) / (n - 1))) if n > 1 else 0.0
    return mean, sd, n, bool(provisional)


def headline_tiles(con: duckdb.DuckDBPyConnection, as_of: dt.date, tables: set[str]) -> list[Tile]:
    """Latest 7 days ending ``as_of`` against the 7 days before; churn: latest complete month vs previous."""
    cur = (as_of - dt.timedelta(days=6), as_of)
    prev = (as_of - dt.timedelta(days=13), as_of - dt.timedelta(days=7))
    period = f"{cur[0]} .. {cur[1]} vs {prev[0]} .. {prev[1]}"
    tiles: list[Tile] = []
    if "kpi_experience_daily" in tables:
        for kpi in PROPORTIONS:
            x2, n2, prov = _period_sums(con, kpi, *cur)
            x1, n1, _ = _period_sums(con, kpi, *prev)
            lo, hi = stats.wilson(x2, n2)
            tiles.append(Tile(kpi, x2 / n2 if n2 else None, int(n2), lo, hi, period,
                              stats.two_proportions(x1, n1, x2, n2), x1 / n1 if n1 else None, prov, n2 >= MIN_N))
        # NPS and CES from the served components of the daily cells: promoters and detractors apart, and a
        # mean's sd pooled from the daily n, mean and sd (never averages of daily values)
        (p1, d1, m1, _), (p2, d2, m2, prov) = (_nps_components(con, *p) for p in (prev, cur))
        change = stats.nps_difference(p1, d1, m1, p2, d2, m2)
        lo = hi = None
        if m2:
            v, var = stats.nps_adjusted_wald(p2, d2, m2)
            lo, hi = 100 * (v - 1.96 * math.sqrt(var)), 100 * (v + 1.96 * math.sqrt(var))
        tiles.insert(0, Tile("nps", 100 * (p2 - d2) / m2 if m2 else None, int(m2), lo, hi, period, change,
                             100 * (p1 - d1) / m1 if m1 else None, prov, m2 >= MIN_N))
        (mean1, s1, k1, _), (mean2, s2, k2, prov) = (_mean_components(con, "ces", *p) for p in (prev, cur))
        change, lo, hi = stats._none("Welch t"), None, None
        if k1 and k2:
            change = stats.welch(mean1, s1, k1, mean2, s2, k2)
        if k2 >= 2:
            half = stats.t_critical(k2 - 1) * s2 / math.sqrt(k2)
            lo, hi = mean2 - half, mean2 + half
        tiles.insert(2, Tile("ces", mean2, int(k2), lo, hi, period, change, mean1, prov, k2 >= MIN_N))
    if "kpi_churn_monthly" in tables:
        months = _rows(con, "select * from kpi_churn_monthly where not is_partial_month and month_start <= ? "
                       "order by month_start desc limit 2", [as_of])
        if months:
            m = months[0]
            p = months[1] if len(months) > 1 else None
            change = stats.two_proportions(p["customers_lost"], p["customers_at_start"], m["customers_lost"],
                                           m["customers_at_start"]) if p else stats._none("two-proportion z")
            tiles.append(Tile("churn", m["churn_rate"], int(m["customers_at_start"] or 0), m["ci_low"], m["ci_high"],
                              f"{m['month_start']:%Y-%m}" + (f" vs {p['month_start']:%Y-%m}" if p else ""), change,
                              p["churn_rate"] if p else None, False, bool(m["is_reportable"])))
        else:
            tiles.append(Tile("churn", None, 0, None, None, "no complete month yet", stats._none("two-proportion z"),
                              None, False, False))
    return tiles


def _tile_html(t: Tile) -> str:
    kind = "pct" if t.kpi in PERCENT else ""
    k = f"tile:{t.kpi}"
    if t.change.marker in (stats.UP, stats.DOWN):
        good = (t.change.marker == stats.UP) == HIGHER_IS_BETTER[t.kpi]
        mclass = "good" if good else "bad"
    else:
        mclass = "neutral"
    diff = t.change.diff
    dtext = "–" if diff is None else (f"{100 * diff:+.1f} pts" if kind == "pct" else f"{diff:+.2f}")
    marker_title = {"": "no test: a period has no observations", stats.SAME: "not significant at 95 %",
                    stats.UP: "significant rise at 95 %", stats.DOWN: "significant fall at 95 %"}[t.change.marker]
    stat = "" if t.change.statistic is None else f"{t.change.test} = {t.change.statistic:+.2f}"
    classes = "tile" + (" provisional" if t.provisional else "") + ("" if t.reportable else " unreportable")
    return (f'<div class="{classes}" data-kpi="{t.kpi}"><div class="name">{html.escape(LABELS[t.kpi])}'
            f'{" (provisional)" if t.provisional else ""}{"" if t.reportable else " *"}</div>'
            + cell(f"{k}:value", t.value, _fmt(t.value, kind), "value", "div")
            + '<div class="sub">n = ' + cell(f"{k}:n", t.n, _fmt(t.n, "int"), tag="span")
            + " · 95 % [" + cell(f"{k}:ci_low", t.low, _fmt(t.low, kind), tag="span") + ", "
            + cell(f"{k}:ci_high", t.high, _fmt(t.high, kind), tag="span") + "]</div>"
            + '<div class="sub">change ' + cell(f"{k}:change", diff, dtext, tag="span")
            + f' <span class="{mclass}" data-cell="{k}:marker" data-value="{t.change.marker}" '
            f'title="{marker_title}">{t.change.marker or "·"}</span> <span title="{html.escape(stat)}">'
            f"({html.escape(t.change.test)})</span></div>"
            f'<div class="sub">{html.escape(t.period)}</div></div>')


# ---------------------------------------------------------------- charts


def _band_traces(go, rows: list[dict], name: str, color: str, scale: float, visible: bool) -> list:
    x = [r["kpi_date"] for r in rows]
    traces = []
    banded = [r for r in rows if r["ci_low"] is not None and r["ci_high"] is not None]
    bx = [r["kpi_date"] for r in banded]
    lo = [scale * r["ci_low"] for r in banded]
    hi = [scale * r["ci_high"] for r in banded]
    traces.append(go.Scatter(x=bx, y=hi, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip",
                             legendgroup=name, visible=visible))
    traces.append(go.Scatter(x=bx, y=lo, mode="lines", line={"width": 0}, fill="tonexty", fillcolor=_alpha(color, .15),
                             showlegend=False, hoverinfo="skip", legendgroup=name, visible=visible))
    final = [r if r["is_final"] else {**r, "value": None} for r in rows]
    traces.append(go.Scatter(
        x=x, y=[None if r["value"] is None else scale * r["value"] for r in final], mode="lines+markers", name=name,
        legendgroup=name, visible=visible, line={"color": color},
        marker={"color": color, "size": 6, "symbol": ["circle" if r["is_reportable"] else "circle-open"
                                                      for r in rows]},
        customdata=[[r["n"]] for r in rows], hovertemplate="%{x}: %{y:.3g} (n=%{customdata[0]})<extra>" + name
        + "</extra>"))
    # provisional cells: dashed and lighter, from the last final point on
    first_prov = next((i for i, r in enumerate(rows) if not r["is_final"]), None)
    if first_prov is not None:
        part = rows[max(0, first_prov - 1):]
        traces.append(go.Scatter(
            x=[r["kpi_date"] for r in part], y=[None if r["value"] is None else scale * r["value"] for r in part],
            mode="lines+markers", name=f"{name} (provisional)", legendgroup=name, visible=visible, opacity=.55,
            line={"color": color, "dash": "dash"}, marker={"symbol": "diamond-open", "color": color, "size": 7},
            customdata=[[r["n"]] for r in part],
            hovertemplate="%{x}: %{y:.3g} (n=%{customdata[0]}, provisional)<extra>" + name + "</extra>"))
    return traces


def _alpha(hex_color: str, a: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{a})"


# the served KPI marts per grain: (table, its date column)
GRAINS = {"day": ("kpi_experience_daily", "kpi_date"), "week": ("kpi_experience_weekly", "week_start")}


def _trend(page: Page, con, kpi: str, as_of: dt.date, grain: str = "day") -> None:
    import plotly.graph_objects as go

    table, date_col = GRAINS[grain]
    rows = _rows(con, f"select {date_col} as kpi_date, dimension, dimension_value, value, n, ci_low, ci_high, "
                 f"is_final, is_reportable from {table} where kpi = ? and {date_col} <= ? and dimension in "
                 "('all', 'segment', 'persona', 'channel', 'touchpoint') order by dimension, dimension_value, kpi_date",
                 [kpi, as_of])
    if not rows:
        page.add(f'<p class="note">No {html.escape(LABELS[kpi])} cell served.</p>')
        return
    scale = 100.0 if kpi in PERCENT else 1.0
    fig = go.Figure()
    groups: dict[str, list[int]] = {}
    dims = [d for d in DIMENSIONS if any(r["dimension"] == d for r in rows)]
    for dim in dims:
        values = sorted({r["dimension_value"] for r in rows if r["dimension"] == dim})
        for i, v in enumerate(values):
            part = [r for r in rows if r["dimension"] == dim and r["dimension_value"] == v]
            start = len(fig.data)
            for tr in _band_traces(go, part, v if dim != "all" else "all customers", PALETTE[i % len(PALETTE)],
                                   scale, dim == "all"):
                fig.add_trace(tr)
            groups.setdefault(dim, []).extend(range(start, len(fig.data)))
    buttons = [{"label": d, "method": "update",
                "args": [{"visible": [i in groups[d] for i in range(len(fig.data))]}]} for d in dims]
    fig.update_layout(title=f"{LABELS[kpi]} by {'ISO week (the Monday)' if grain == 'week' else 'day'}"
                      + (" (%)" if scale == 100 else ""),
                      updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.18,
                                    "yanchor": "top", "showactive": True}],
                      legend={"orientation": "h", "y": -0.2}, hovermode="closest")
    page.figure(fig, f"trend-{kpi}" if grain == "day" else f"trend-{grain}-{kpi}")


def _weekly_table(page: Page, con, as_of: dt.date) -> None:
    """The main KPIs by ISO week, all customers: the served weekly cells, with n and interval."""
    rows = _rows(con, "select kpi, week_start, value, n, ci_low, ci_high, is_final, is_reportable "
                 "from kpi_experience_weekly where dimension = 'all' and week_start <= ? order by kpi, week_start",
                 [as_of])
    table = ['<table><tr><th class="l">KPI</th><th class="l">ISO week</th><th>value</th><th>n</th>'
             "<th>95 % low</th><th>95 % high</th><th class=l>final</th></tr>"]
    for kpi in MAIN_KPIS:
        kind = "pct" if kpi in PERCENT else ""
        for r in (r for r in rows if r["kpi"] == kpi):
            wk = r["week_start"].isocalendar()
            key = f"weekly:{kpi}:{r['week_start']}"
            table.append(f'<tr><td class="l">{LABELS[kpi]}{"" if r["is_reportable"] else " *"}</td>'
                         f'<td class="l">{wk.year}-W{wk.week:02d}</td>'
                         + cell(f"{key}:value", r["value"], _fmt(r["value"], kind))
                         + cell(f"{key}:n", r["n"], _fmt(r["n"], "int"))
                         + cell(f"{key}:ci_low", r["ci_low"], _fmt(r["ci_low"], kind))
                         + cell(f"{key}:ci_high", r["ci_high"], _fmt(r["ci_high"], kind))
                         + f'<td class="l">{"yes" if r["is_final"] else "provisional"}</td></tr>')
    page.add("<details><summary>The weekly cells, all customers</summary>" + "".join(table) + "</table></details>")


def _promises(page: Page, con, as_of: dt.date) -> None:
    import plotly.graph_objects as go

    rows = _rows(con, """select * from mart_promise_gap where dimension = 'all' and promise_date <= ?
        qualify row_number() over (partition by promise_id order by promise_date desc) = 1 order by promise_id""",
                 [as_of])
    if not rows:
        page.add('<p class="note">No promise judged yet.</p>')
        return
    fig = go.Figure(go.Bar(
        y=[r["promise_id"] for r in rows], x=[100 * (r["kept_rate_28d"] or 0) for r in rows], orientation="h",
        marker={"color": [PALETTE[0] if r["n_28d"] and r["n_28d"] >= MIN_N else "rgba(0,0,0,0)" for r in rows],
                "line": {"color": PALETTE[0], "width": 2}},
        error_x={"type": "data", "symmetric": False,
                 "array": [100 * ((r["kept_rate_28d_ci_high"] or 0) - (r["kept_rate_28d"] or 0)) for r in rows],
                 "arrayminus": [100 * ((r["kept_rate_28d"] or 0) - (r["kept_rate_28d_ci_low"] or 0)) for r in rows]},
        customdata=[[r["n_28d"]] for r in rows], hovertemplate="%{y}: %{x:.1f} % kept (n=%{customdata[0]})"))
    fig.update_layout(title="Kept rate per promise, last 28 days (%), 95 % interval; hollow: n < 30",
                      xaxis={"range": [0, 100]})
    page.figure(fig, "promise-gap", 60 + 34 * len(rows))
    t = ['<table><tr><th class="l">promise</th><th class="l">measure</th><th>target</th><th>n (28 d)</th>'
         "<th>kept (28 d)</th><th>95 % low</th><th>95 % high</th><th class=l>latest day</th><th>n</th>"
         "<th>gap p50</th><th>gap p90</th><th class=l>unit</th></tr>"]
    for r in rows:
        k = f"promise:{r['promise_id']}"
        t.append(f'<tr><td class="l">{html.escape(r["promise_id"])}</td><td class="l">{html.escape(r["measure"])}</td>'
                 + cell(f"{k}:target", r["target"], _fmt(r["target"], "", 0)) + cell(f"{k}:n_28d", r["n_28d"],
                                                                                    _fmt(r["n_28d"], "int"))
                 + cell(f"{k}:kept_rate_28d", r["kept_rate_28d"], _fmt(r["kept_rate_28d"], "pct"))
                 + cell(f"{k}:ci_low", r["kept_rate_28d_ci_low"], _fmt(r["kept_rate_28d_ci_low"], "pct"))
                 + cell(f"{k}:ci_high", r["kept_rate_28d_ci_high"], _fmt(r["kept_rate_28d_ci_high"], "pct"))
                 + f'<td class="l">{r["promise_date"]}{"" if r["is_final"] else " (provisional)"}</td>'
                 + cell(f"{k}:n", r["n"], _fmt(r["n"], "int"))
                 + cell(f"{k}:gap_p50", r["gap_p50"]) + cell(f"{k}:gap_p90", r["gap_p90"])
                 + f'<td class="l">{html.escape(r["unit"] or "")}</td></tr>')
    page.add("".join(t) + "</table>")


def _flows(page: Page, con, as_of: dt.date) -> None:
    import plotly.graph_objects as go

    month = con.execute("select max(month_start) from kpi_profile_flows_monthly where not is_partial_month "
                        "and month_start <= ?", [as_of]).fetchone()[0]
    if month is None:
        page.add('<p class="note">No complete month of profile flows yet.</p>')
        return
    rows = _rows(con, "select * from kpi_profile_flows_monthly where month_start = ? order by from_profile, "
                 "to_profile", [month])
    names = sorted({r["from_profile"] for r in rows} | {r["to_profile"] for r in rows})
    colors = {"negative": PALETTE[3], "evasive": PALETTE[1], "advocate": PALETTE[2]}
    src = [f"{n} (start)" for n in names]
    dst = [f"{n} (end)" for n in names]
    fig = go.Figure(go.Sankey(
        node={"label": src + dst, "color": [colors.get(n, PALETTE[7]) for n in names] * 2, "pad": 14},
        link={"source": [names.index(r["from_profile"]) for r in rows],
              "target": [len(names) + names.index(r["to_profile"]) for r in rows],
              "value": [r["customers"] for r in rows],
              "color": [_alpha(colors.get(r["from_profile"], PALETTE[7]), .35) for r in rows]}))
    fig.update_layout(title=f"Customer profiles, {month:%Y-%m}: where each profile went")
    page.figure(fig, "profile-flows", 380)
    t = ['<table><tr><th class="l">from</th><th class="l">to</th><th>customers</th></tr>']
    for r in rows:
        t.append(f'<tr><td class="l">{html.escape(str(r["from_profile"]))}</td>'
                 f'<td class="l">{html.escape(str(r["to_profile"]))}</td>'
                 + cell(f"flow:{month:%Y-%m}:{r['from_profile']}:{r['to_profile']}", r["customers"],
                        _fmt(r["customers"], "int")) + "</tr>")
    r0 = rows[0]
    page.add("".join(t) + "</table>")
    page.add(f'<p class="note">Negatives at the start of the month: {_fmt(r0["negatives_at_start"], "int")}; '
             f'recovered: {_fmt(r0["negatives_recovered"], "int")} '
             f'({_fmt(r0["recovered_share"], "pct")}, 95 % [{_fmt(r0["recovered_share_ci_low"], "pct")}, '
             f'{_fmt(r0["recovered_share_ci_high"], "pct")}]).</p>')


def _drivers(page: Page, con, tables: set[str]) -> None:
    import plotly.graph_objects as go

    if "mart_experience_drivers" in tables:
        rows = _rows(con, "select * from mart_experience_drivers where outcome = 'nps' and segment = 'all' "
                     "order by importance_rank nulls last, moment")
        if rows:
            rows_r = list(reversed(rows))
            fig = go.Figure(go.Scatter(
                y=[r["moment"] for r in rows_r], x=[r["effect"] for r in rows_r], mode="markers",
                marker={"size": 10, "color": PALETTE[0],
                        "symbol": ["circle" if r["is_reportable"] else "circle-open" for r in rows_r]},
                error_x={"type": "data", "symmetric": False,
                         "array": [(r["effect_ci_high"] - r["effect"]) if r["effect_ci_high"] is not None else 0
                                   for r in rows_r],
                         "arrayminus": [(r["effect"] - r["effect_ci_low"]) if r["effect_ci_low"] is not None else 0
                                        for r in rows_r]},
                customdata=[[r["n_with"], r["importance"]] for r in rows_r],
                hovertemplate="%{y}: %{x:+.2f} points (n with=%{customdata[0]}, importance %{customdata[1]:.0%})"))
            fig.add_vline(x=0, line={"color": "#888", "dash": "dot"})
            fig.update_layout(title="Key drivers of NPS (all segments): effect on the 0-10 score, 95 % interval; "
                              "hollow: not reportable", xaxis_title="mean score with the moment minus without")
            page.figure(fig, "drivers", 80 + 32 * len(rows))
            t = ['<table><tr><th>rank</th><th class="l">moment</th><th>effect</th><th>95 % low</th><th>95 % high</th>'
                 "<th>n with</th><th>n without</th><th>importance</th></tr>"]
            for r in rows:
                k = f"driver:nps:{r['moment']}"
                t.append("<tr>" + cell(f"{k}:rank", r["importance_rank"], _fmt(r["importance_rank"], "int"))
                         + f'<td class="l">{html.escape(r["moment"])}{"" if r["is_reportable"] else " *"}</td>'
                         + cell(f"{k}:effect", r["effect"], _fmt(r["effect"], "", 2))
                         + cell(f"{k}:ci_low", r["effect_ci_low"], _fmt(r["effect_ci_low"], "", 2))
                         + cell(f"{k}:ci_high", r["effect_ci_high"], _fmt(r["effect_ci_high"], "", 2))
                         + cell(f"{k}:n_with", r["n_with"], _fmt(r["n_with"], "int"))
                         + cell(f"{k}:n_without", r["n_without"], _fmt(r["n_without"], "int"))
                         + cell(f"{k}:importance", r["importance"], _fmt(r["importance"], "pct", 0)) + "</tr>")
            page.add("".join(t) + "</table>")
        else:
            page.add('<p class="note">No NPS driver computed yet.</p>')
    else:
        page.add(_skip("mart_experience_drivers"))
    if "mart_experience_value" in tables:
        rows = _rows(con, "select * from mart_experience_value where measure = 'revenue_at_stake_yearly' "
                     "and segment = 'all' order by \"group\"")
        t = ['<table><tr><th class="l">group</th><th>revenue at stake a year</th><th>95 % low</th><th>95 % high</th>'
             '<th>n</th><th class="l">unit</th></tr>']
        for r in rows:
            k = f"stake:{r['group']}"
            t.append(f'<tr><td class="l">{html.escape(str(r["group"]))}{"" if r["is_reportable"] else " *"}</td>'
                     + cell(f"{k}:value", r["value"], _fmt(r["value"], "", 0))
                     + cell(f"{k}:ci_low", r["ci_low"], _fmt(r["ci_low"], "", 0))
                     + cell(f"{k}:ci_high", r["ci_high"], _fmt(r["ci_high"], "", 0))
                     + cell(f"{k}:n", r["n"], _fmt(r["n"], "int"))
                     + f'<td class="l">{html.escape(r["unit"])}</td></tr>')
        page.add("<h3>Revenue at stake</h3>" + ("".join(t) + "</table>" if rows else
                                               '<p class="note">Not computed yet.</p>'))
    else:
        page.add(_skip("mart_experience_value"))


def _followups(page: Page, con, as_of: dt.date, tables: set[str]) -> None:
    import plotly.graph_objects as go

    if "kpi_experience_daily" in tables:
        fig = go.Figure()
        for i, kpi in enumerate(["followup_backlog_overdue_rate", "followup_breach_rate"]):
            rows = _rows(con, "select kpi_date, value, n, ci_low, ci_high, is_final, is_reportable from "
                         "kpi_experience_daily where kpi = ? and dimension = 'all' and kpi_date <= ? order by kpi_date",
                         [kpi, as_of])
            for tr in _band_traces(go, rows, LABELS[kpi], PALETTE[3 + i], 100.0, True):
                fig.add_trace(tr)
        fig.update_layout(title="Follow-up of unhappy answers by day (%), 95 % interval", legend={"orientation": "h"})
        page.figure(fig, "followups", 340)
    else:
        page.add(_skip("kpi_experience_daily"))
    if "mart_feedback_followups" in tables:
        rows = con.execute("select status, count(*), count(*) filter (where is_breached) from mart_feedback_followups "
                           "where response_date <= ? group by 1 order by 1", [as_of]).fetchall()
        t = ['<table><tr><th class="l">status</th><th>answers</th><th>breached</th></tr>']
        for status, n, b in rows:
            t.append(f'<tr><td class="l">{html.escape(str(status))}</td>'
                     + cell(f"followups:{status}", n, _fmt(n, "int"))
                     + cell(f"followups:{status}:breached", b, _fmt(b, "int")) + "</tr>")
        page.add("".join(t) + "</table>")
    else:
        page.add(_skip("mart_feedback_followups"))


def _health(page: Page, con, as_of: dt.date, tables: set[str], out: Path, gx_index: Path | None) -> None:
    if "data_health" not in tables:
        page.add(_skip("data_health"))
        return
    rows = _rows(con, "select status, check_name, asset, coalesce(subject, '') as subject, coalesce(message, '') "
                 "as message, observed_value, coalesce(expected_range, '') as expected_range from data_health "
                 "where business_date = ? and status in ('warn', 'fail') order by status, check_name, asset, subject",
                 [as_of])
    counts = dict(con.execute("select status, count(*) from data_health where business_date = ? group by 1",
                              [as_of]).fetchall())
    page.add('<p>Checks of the night: ' + ", ".join(
        f'{cell(f"health:{s}", counts.get(s, 0), _fmt(counts.get(s, 0), "int"), tag="span")} {s}'
        for s in ("fail", "warn", "pass", "no_baseline")) + ".</p>")
    if rows:
        t = ['<table><tr><th class="l">status</th><th class="l">check</th><th class="l">asset</th>'
             '<th class="l">subject</th><th class="l">message</th></tr>']
        for r in rows:
            msg = r["message"] or (f"observed {r['observed_value']:g}, expected {r['expected_range']}"
                                   if r["observed_value"] is not None else r["expected_range"])
            t.append(f'<tr data-cell="health-row"><td class="l {"bad" if r["status"] == "fail" else ""}">'
                     f'{r["status"]}</td><td class="l">{html.escape(r["check_name"])}</td>'
                     f'<td class="l">{html.escape(r["asset"])}</td><td class="l">{html.escape(r["subject"])}</td>'
                     f'<td class="l">{html.escape(msg)}</td></tr>')
        page.add("".join(t) + "</table>")
    else:
        page.add('<p class="note">No check warned or failed.</p>')
    # quarantine counts per system are not served: the quarantine_rate rows of data_health stand in
    q = _rows(con, "select source, asset, subject, observed_value, status from data_health where business_date = ? "
              "and check_name = 'quarantine_rate' order by source, subject", [as_of])
    if q:
        t = ['<h3>Quarantine rate per drop (data_health quarantine_rate)</h3><table><tr><th class="l">system</th>'
             '<th class="l">entity</th><th>quarantined share</th><th class="l">status</th></tr>']
        for r in q:
            t.append(f'<tr><td class="l">{html.escape(r["source"].removeprefix("ingest_"))}</td>'
                     f'<td class="l">{html.escape(r["subject"] or r["asset"])}</td>'
                     + cell(f"quarantine:{r['subject'] or r['asset']}", r["observed_value"],
                            _fmt(r["observed_value"], "pct", 2)) + f'<td class="l">{r["status"]}</td></tr>')
        page.add("".join(t) + "</table>")
    fresh = con.execute("select source, max(business_date) from data_health where source like 'ingest_%' group by 1 "
                        "order by 1").fetchall()
    t = ['<h3>Freshness of each source</h3><table><tr><th class="l">source</th><th class="l">latest business date</th>'
         "<th>days behind</th></tr>"]
    for source, latest in fresh:
        behind = (as_of - latest).days
        t.append(f'<tr><td class="l">{html.escape(source.removeprefix("ingest_"))}</td>'
                 + cell(f"fresh:{source.removeprefix('ingest_')}", str(latest), str(latest), "l")
                 + cell(f"fresh:{source.removeprefix('ingest_')}:behind", behind, str(behind),
                        "" if behind <= 0 else "bad") + "</tr>")
    page.add("".join(t) + "</table>")
    if gx_index is not None and gx_index.exists():
        rel = os.path.relpath(gx_index.resolve(), out.resolve().parent)
        page.add(f'<p>Great Expectations Data Docs of the night: <a data-cell="gx-link" href="{html.escape(rel)}">'
                 f"{html.escape(rel)}</a></p>")
    else:
        page.add('<p class="note">No Great Expectations Data Docs next to this served file.</p>')


def _skip(table: str) -> str:
    return (f'<p class="skipped" data-skipped="{table}">Skipped: table <code>{table}</code> is not served in this '
            "file (an older publication).</p>")


def build_report(serving_db: Path, out: Path, as_of: dt.date | None = None,
                 gx_index: Path | None = None) -> ReportInfo:
    """Write the report of ``serving_db`` (read-only) to ``out``; ``as_of`` defaults to the publication's."""
    t0 = time.perf_counter()
    serving_db = Path(serving_db)
    if gx_index is None:  # <data>/docs/gx/index.html next to <data>/serving/cx.duckdb
        gx_index = serving_db.resolve().parent.parent / "docs" / "gx" / "index.html"
    page = Page()
    info = ReportInfo(Path(out), dt.date.today(), 0, 0.0)
    with duckdb.connect(str(serving_db), read_only=True) as con:
        tables = _tables(con)
        if as_of is None:
            found = None
            if "_publication" in tables:
                found = con.execute("select max(as_of) from _publication").fetchone()[0]
            if found is None and "kpi_experience_daily" in tables:
                found = con.execute("select max(kpi_date) from kpi_experience_daily").fetchone()[0]
            as_of = dt.date.fromisoformat(str(found)) if found is not None else dt.date.today()
        info.as_of = as_of
        published = con.execute("select max(published_at) from _publication").fetchone()[0] \
            if "_publication" in tables else None

        def section(title: str, needs: list[str], body: Callable[[], None], anchor: str) -> None:
            page.add(f'<section id="{anchor}"><h2>{html.escape(title)}</h2>')
            missing = [t for t in needs if t not in tables]
            if missing:
                for t in missing:
                    page.add(_skip(t))
                info.skipped.append(anchor)
            else:
                body()
                info.sections.append(anchor)
            page.add("</section>")

        def tiles() -> None:
            page.add('<div class="tiles">' + "".join(_tile_html(t) for t in headline_tiles(con, as_of, tables))
                     + "</div>")
            page.add('<p class="note">Last 7 days ending the as-of date against the 7 days before (churn: the latest '
                     "complete month against the one before). ▲/▼: significant change at 95 % (green better, "
                     "orange worse); =: not significant; ·: no test (a period without answers). Tests: two-proportion"
                     " z (CSAT, FCR, on-time, churn), adjusted-Wald difference (NPS), Welch t (CES). * not reportable "
                     "(n &lt; 30); dashed tile: provisional cells in the period.</p>")

        def trends() -> None:
            page.add('<p class="note">Pick a dimension with the menu at the top right of each chart. Band: 95 % '
                     "interval; hollow marker: not reportable (n &lt; 30 or not final); dashed lighter line: "
                     "provisional cells (is_final false).</p>")
            for kpi in MAIN_KPIS:
                _trend(page, con, kpi, as_of)
            if "kpi_experience_weekly" not in tables:
                page.add(_skip("kpi_experience_weekly"))
                return
            page.add('<h3>By ISO week</h3><p class="note">Each week\'s value and interval come from the week\'s '
                     "components (kpi_experience_weekly: promoters, detractors, successes, n, pooled sd), never from "
                     "averages of daily values. A week not over yet is provisional.</p>")
            for kpi in MAIN_KPIS:
                _trend(page, con, kpi, as_of, "week")
            _weekly_table(page, con, as_of)

        page.add(f'<header><h1>Customer experience, as of {as_of}</h1><p class="meta">From the served marts '
                 f'(<code>{html.escape(serving_db.name)}</code>, published {published or "unknown"} UTC). Okabe-Ito '
                 "colours; every number with its n and its 95 % interval.</p></header>")
        section("Headline KPIs", ["kpi_experience_daily"], tiles, "tiles")
        section("KPI trends", ["kpi_experience_daily"], trends, "trends")
        section("Brand promises: the gap", ["mart_promise_gap"], lambda: _promises(page, con, as_of), "promises")
        section("Profile flows: negative, evasive, advocate", ["kpi_profile_flows_monthly"],
                lambda: _flows(page, con, as_of), "flows")
        section("Key drivers and revenue at stake", [], lambda: _drivers(page, con, tables), "drivers")
        section("Follow-up of unhappy answers", [], lambda: _followups(page, con, as_of, tables), "followups")
        section("Data health of the night", [], lambda: _health(page, con, as_of, tables, Path(out), gx_index),
                "health")
    doc = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>CX report {as_of}</title><meta name=\"viewport\" content=\"width=device-width\">"
           f"<style>{CSS}</style></head><body>" + "\n".join(page.parts)
           + f'<footer class="note">Built by <code>cxw report</code>; sections: {json.dumps(info.sections)}.</footer>'
           "</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    os.replace(tmp, out)
    info.path, info.bytes, info.charts = out, out.stat().st_size, page.charts
    info.seconds = time.perf_counter() - t0
    return info
