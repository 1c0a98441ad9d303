"""timeline.html: every operation and every fault window on one time axis.

One lane per process (the nemesis on top, then the clients, then the final
drain). An operation is a bar from its invoke to its completion, coloured by
outcome and kind; a fault is a shaded band across every lane. Operations named
in an anomaly get a red outline, a red marker above their lane and a dashed
red line across the chart; the list under the chart links to them. Inline SVG,
no external assets, so the file can be opened anywhere.

    python3 jepsen/timeline.py history.jsonl result.json timeline.html
"""

import html
import json
import sys

import checker

LANE = 16
TOP = 46
LEFT = 110

COLORS = {
    ("produce", "ok"): "#2e7d32", ("consume", "ok"): "#1565c0", ("commit", "ok"): "#6a1b9a",
    ("topic-info", "ok"): "#00838f",
}
FAIL, INFO = "#c62828", "#f9a825"
FAULT_COLORS = {"kill-worker": "#ef6c00", "kill-skiffd": "#d84315", "pause-worker": "#5d4037",
                "pause-skiffd": "#455a64", "power-cut": "#880e4f"}


def esc(x):
    return html.escape(str(x), quote=True)


def op_title(op, t0):
    v = {k: x for k, x in op.value.items() if k not in ("messages", "node")}
    msgs = op.value.get("messages")
    if msgs is not None:
        v["count"] = len(msgs)
        if msgs:
            v["offsets"] = "%s..%s" % (msgs[0][0], msgs[-1][0])
    took = "" if op.t1 == checker.INF else " %.1f ms" % ((op.t1 - op.t0) / 1e6)
    return "line %s  p%s  %s %s  at %.3f s%s\n%s" % (
        op.line, op.process, op.f, op.type, (op.t0 - t0) / 1e9, took,
        json.dumps(v, sort_keys=True)[:400])


def anomalous_lines(report):
    out = {}
    for kind, entries in (report or {}).get("anomalies", {}).items():
        for e in entries:
            for o in e.get("ops", []):
                out.setdefault(o["line"], set()).add(kind)
    return out


def lanes_of(ops):
    procs = {json.dumps(o.process): o.process for o in ops}
    nums = sorted((p for p in procs.values() if isinstance(p, int)))
    strs = sorted((p for p in procs.values() if not isinstance(p, int) and p != "nemesis"), key=str)
    order = (["nemesis"] if "nemesis" in procs.values() else []) + nums + strs
    return {json.dumps(p): i for i, p in enumerate(order)}, order


def render(history_path, report, out_path, title="skiff jepsen run"):
    ops = checker.pair_ops(checker.load_history(history_path))
    if not ops:
        with open(out_path, "w") as f:
            f.write("<!doctype html><title>%s</title><p>empty history</p>" % esc(title))
        return
    t0 = min(o.t0 for o in ops)
    t_end = max(max(o.t0 for o in ops), max(o.t1 for o in ops if o.t1 != checker.INF))
    span_s = max((t_end - t0) / 1e9, 0.001)
    pps = min(400.0, max(40.0, 3600.0 / span_s))
    width = int(LEFT + span_s * pps + 40)
    lane_of, order = lanes_of(ops)
    height = TOP + LANE * len(order) + 20
    bad = anomalous_lines(report)

    def x(t):
        return LEFT + (t - t0) / 1e9 * pps

    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" '
           'font-size="10">' % (width, height),
           '<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="2" height="4" fill="%s"/></pattern></defs>' % INFO]
    for s in range(int(span_s) + 1):  # axis: a tick per second
        xs = x(t0 + s * 1e9)
        svg.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e0e0e0"/>'
                   % (xs, TOP - 4, xs, height - 16))
        if s % max(1, int(60 / pps) + 1) == 0:
            svg.append('<text x="%.1f" y="%d" fill="#616161">%ds</text>' % (xs + 2, height - 4, s))
    for i, p in enumerate(order):
        y = TOP + i * LANE
        if i % 2:
            svg.append('<rect x="0" y="%d" width="%d" height="%d" fill="#fafafa"/>' % (y, width, LANE))
        name = "nemesis" if p == "nemesis" else ("p%s" % p if isinstance(p, int) else str(p))
        svg.append('<text x="4" y="%d">%s</text>' % (y + 11, esc(name)))
    for o in ops:  # fault windows first, under the operations
        kind = o.value.get("fault") if o.process == "nemesis" else None
        if kind:
            x0, x1 = x(o.t0), x(o.t1 if o.t1 != checker.INF else t_end)
            c = FAULT_COLORS.get(kind, "#9e9e9e")
            svg.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" opacity="0.16">'
                       '<title>%s</title></rect>' % (x0, TOP, max(2.0, x1 - x0), LANE * len(order),
                                                     c, esc(op_title(o, t0))))
            svg.append('<text x="%.1f" y="%d" fill="%s" font-size="9">%s</text>'
                       % (x0 + 1, TOP - 6 - 9 * (hash(o.line) % 3), c, esc(kind)))
    markers = []
    for o in ops:
        y = TOP + lane_of[json.dumps(o.process)] * LANE + 2
        open_ended = o.t1 == checker.INF
        x0, x1 = x(o.t0), x(t_end if open_ended else o.t1)
        if o.type == "ok":
            fill = COLORS.get((o.f, "ok"), "#757575")
        elif o.type == "fail":
            fill = FAIL
        else:
            fill = "url(#hatch)" if open_ended else INFO
        if o.process == "nemesis":
            fill = FAULT_COLORS.get(o.f, "#9e9e9e") if o.value.get("fault") else "#bdbdbd"
        kinds = bad.get(o.line) or (bad.get(o.cline) if o.cline else None)
        stroke = ' stroke="#d50000" stroke-width="2"' if kinds else ""
        h = LANE - 4 if o.f == "produce" or o.process == "nemesis" else LANE - 8
        title = op_title(o, t0) + ("\nANOMALY: " + ", ".join(sorted(kinds)) if kinds else "")
        svg.append('<rect id="op-%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"%s>'
                   '<title>%s</title></rect>' % (o.line, x0, y + (LANE - 4 - h) // 2,
                                                 max(1.0, x1 - x0), h, fill, stroke, esc(title)))
        if kinds:
            markers.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d50000" '
                           'stroke-dasharray="3,3" opacity="0.5"/>' % (x0, TOP, x0, height - 16))
            markers.append('<path d="M%.1f %d l-4 -6 h8 z" fill="#d50000"/>' % (x0, y))
    svg.extend(markers)
    svg.append("</svg>")
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(page(title, report, "\n".join(svg), t0))


def legend():
    items = [("produce ok", COLORS[("produce", "ok")]), ("consume ok", COLORS[("consume", "ok")]),
             ("commit ok", COLORS[("commit", "ok")]), ("fail (did not happen)", FAIL),
             ("info (indeterminate)", INFO)]
    items += [("fault: " + k, c) for k, c in FAULT_COLORS.items()]
    return " ".join('<span style="white-space:nowrap"><span style="display:inline-block;width:12px;'
                    'height:10px;background:%s"></span> %s</span>' % (c, esc(n)) for n, c in items)


def page(title, report, svg, t0):
    report = report or {}
    stats = report.get("stats", {})
    verdict = {True: "VALID", False: "INVALID", "vacuous": "VACUOUS"}.get(report.get("valid"), "?")
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>%s</title>" % esc(title),
             "<style>body{font-family:sans-serif;margin:12px} .scroll{overflow-x:auto;"
             "border:1px solid #ccc} li{margin:2px 0} code{font-size:12px}"
             " .bad{color:#c62828} .ok{color:#2e7d32}</style></head><body>",
             "<h2>%s — <span class='%s'>%s</span></h2>" % (esc(title), "ok" if verdict == "VALID"
                                                          else "bad", verdict),
             "<p>%s operations, %s acknowledged produces, faults: %s. Hover a bar for its "
             "operation; red outlines and markers are operations named in an anomaly.</p>" % (
                 stats.get("operations", "?"), stats.get("acknowledged", "?"),
                 esc(", ".join("%s=%s" % kv for kv in stats.get("faults_by_kind", {}).items())
                     or "none")),
             "<p>%s</p>" % legend(), "<div class='scroll'>%s</div>" % svg]
    for why in report.get("vacuous", []):
        parts.append("<p class='bad'>vacuous: %s</p>" % esc(why))
    for f in report.get("findings", []):
        parts.append("<p class='bad'>finding (%s, %s): %s</p>" % (esc(f.get("node")),
                                                                  esc(f.get("kind")),
                                                                  esc(f.get("message"))))
    if report.get("anomaly_counts"):
        parts.append("<h3>Anomalies</h3><ul>")
        for kind, n in report["anomaly_counts"].items():
            parts.append("<li><b>%s</b>: %d — %s<ul>" % (esc(kind), n,
                                                       esc(checker.EXPLAIN.get(kind, ""))))
            for e in report["anomalies"].get(kind, [])[:50]:
                fields = {k: v for k, v in e.items() if k not in ("kind", "ops")}
                links = ", ".join('<a href="#op-%s">line %s (p%s %s %s at %.3f s)</a>' % (
                    o["line"], o["line"], esc(o["process"]), esc(o["f"]), esc(o["type"]),
                    (o["time"] - t0) / 1e9) for o in e.get("ops", [])[:8])
                parts.append("<li><code>%s</code><br>%s</li>" % (esc(json.dumps(fields,
                                                                               sort_keys=True)),
                                                                 links))
            parts.append("</ul></li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    with open(argv[2]) as f:
        result = json.load(f)
    report = result.get("checker", result)
    report = dict(report, findings=result.get("findings", []))
    render(argv[1], report, argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
