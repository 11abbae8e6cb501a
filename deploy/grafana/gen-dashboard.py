#!/usr/bin/env python3
"""Writes deploy/grafana/gavel.json, the Grafana dashboard over Gavel's metrics.

Edit the panels here and run `python3 deploy/grafana/gen-dashboard.py`; the JSON is
committed so operators can import it without running anything. Every metric it names is
checked against what Gavel exports (crates/gavel-server/tests/deploy.rs).
"""
import json
import pathlib

SEL = 'instance=~"$instance"'
RI = "$__rate_interval"


def q(expr, legend):
    return {"expr": expr, "legendFormat": legend}


def quantiles(metric):
    return [
        q(f"histogram_quantile({p}, sum by (le) (rate({metric}_bucket{{{SEL}}}[{RI}])))", f"p{int(p*100)}")
        for p in (0.5, 0.95, 0.99)
    ]


panels = []
_id = [0]
_y = [0]


def row(title):
    _id[0] += 1
    panels.append({"type": "row", "title": title, "id": _id[0], "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": _y[0]}, "panels": []})
    _y[0] += 1
    row.x = 0


def panel(title, targets, unit="short", kind="timeseries", w=8, h=8, description=""):
    _id[0] += 1
    if row.x + w > 24:
        row.x = 0
        _y[0] += h
    p = {
        "type": kind,
        "title": title,
        "id": _id[0],
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": h, "w": w, "x": row.x, "y": _y[0]},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [dict(t, refId=chr(65 + i), datasource={"type": "prometheus", "uid": "${datasource}"})
                    for i, t in enumerate(targets)],
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "none"}
        p["fieldConfig"]["defaults"]["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}
    panels.append(p)
    row.x += w
    if row.x >= 24:
        row.x = 0
        _y[0] += h


row.x = 0

row("Readiness")
panel("Ready nodes", [q(f"gavel_ready{{{SEL}}}", "{{instance}}")], kind="stat", w=8, h=4,
      description="1: /readyz answers 200. 0: not ready (authority or archive unusable, or draining).")
panel("Draining nodes", [q(f"gavel_draining{{{SEL}}}", "{{instance}}")], w=8, h=4,
      description="1 while a node drains for a restart (SIGTERM).")
panel("Scraped", [q(f'up{{job="gavel",{SEL}}}', "{{instance}}")], kind="stat", w=8, h=4)

row("Bids")
panel("Bids per second by outcome",
      [q(f"sum by (outcome) (rate(gavel_bids_total{{{SEL}}}[{RI}]))", "{{outcome}}")], unit="reqps",
      description="Every decided bid: accepted, or the rejection the bidder was told (outbid, too_low, ...).")
panel("Bid errors per second by code",
      [q(f"sum by (code) (rate(gavel_bid_errors_total{{{SEL}}}[{RI}]))", "{{code}}"),
       q(f"sum(rate(gavel_bids_rate_limited_total{{{SEL}}}[{RI}]))", "rate_limited")], unit="reqps",
      description="Bids the engine could not decide or answer (unavailable, outcome_unknown, internal), and bids refused by the rate limit.")
panel("Decision latency", quantiles("gavel_bid_decision_seconds"), unit="s",
      description="From the edge handing a bid to the engine to the durable reply.")

row("Delivery latency (as users see it)")
panel("Decision → frame written (server)", quantiles("gavel_delivery_seconds"), unit="s",
      description="Measured by the server for every update it writes, from the authority's time of the change.")
panel("Decision → received (clients)", quantiles("gavel_client_delivery_seconds"), unit="s",
      description="Reported by web and TypeScript clients every 30 s, with their clock offset (± half a round trip; see the next panel).")
panel("Client clock error bound and reports",
      [q(f"max(gavel_client_clock_error_seconds_max{{{SEL}}})", "largest clock error (s)"),
       q(f"sum(rate(gavel_latency_reports_total{{{SEL}}}[{RI}])) * 60", "reports / min"),
       q(f"sum(rate(gavel_latency_reports_refused_total{{{SEL}}}[{RI}])) * 60", "refused / min")],
      description="Per-auction figures: GET /api/admin/latency (and the auctioneer page).")

row("Watchers and connections")
panel("Connections and watchers",
      [q(f"sum by (instance) (gavel_connections{{{SEL}}})", "connections {{instance}}"),
       q(f"sum by (instance) (gavel_watchers{{{SEL}}})", "watchers {{instance}}"),
       q(f"sum by (instance) (gavel_hub_rooms{{{SEL}}})", "rooms {{instance}}")])
panel("Frames sent per second",
      [q(f"sum by (instance) (rate(gavel_ws_frames_sent_total{{{SEL}}}[{RI}]))", "{{instance}}")], unit="ops")
panel("Slow consumers and refusals (per minute)",
      [q(f"sum(rate(gavel_ws_too_slow_total{{{SEL}}}[{RI}])) * 60", "closed: too slow"),
       q(f"sum(rate(gavel_ws_stalled_total{{{SEL}}}[{RI}])) * 60", "closed: stalled"),
       q(f"sum(rate(gavel_ws_conflated_total{{{SEL}}}[{RI}])) * 60", "conflated (resync snapshot)"),
       q(f"sum(rate(gavel_ws_refused_total{{{SEL}}}[{RI}])) * 60", "WebSocket refused"),
       q(f"sum(rate(gavel_connections_refused_total{{{SEL}}}[{RI}])) * 60", "connections refused")])

row("Archive and drain")
panel("Archive lag", [q(f"max by (instance) (gavel_archive_lag_seconds{{{SEL}}})", "{{instance}}")], unit="s",
      description="Distributed mode: how long the oldest change a drainer holds has waited for PostgreSQL.")
panel("Drained entries per second",
      [q(f"sum by (instance) (rate(gavel_drainer_entries_total{{{SEL}}}[{RI}]))", "{{instance}}"),
       q(f"sum(rate(gavel_archive_batches_total{{{SEL}}}[{RI}]))", "embedded group commits")], unit="ops")
panel("Archive failures and dead letters",
      [q(f"sum(increase(gavel_drainer_dead_letters_total{{{SEL}}}[{RI}]))", "dead letters"),
       q(f"sum(increase(gavel_drainer_write_failures_total{{{SEL}}}[{RI}]))", "drainer write failures"),
       q(f"sum(increase(gavel_archive_commit_failures_total{{{SEL}}}[{RI}]))", "embedded commit failures"),
       q(f"sum(increase(gavel_fanout_gaps_total{{{SEL}}}[{RI}]))", "fan-out gaps (resynced)")])

row("Webhooks")
panel("Webhook delivery attempts per second by outcome",
      [q(f"sum by (outcome) (rate(gavel_webhook_deliveries_total{{{SEL}}}[{RI}]))", "{{outcome}}")], unit="ops")
panel("Failed webhook attempts per minute",
      [q(f"sum(rate(gavel_webhook_deliveries_failed_total{{{SEL}}}[{RI}])) * 60", "failed or gone")])
panel("Webhook attempt duration", quantiles("gavel_webhook_attempt_seconds"), unit="s",
      description="From signing to the receiver's answer (or the timeout).")

dashboard = {
    "uid": "gavel",
    "title": "Gavel",
    "tags": ["gavel"],
    "timezone": "utc",
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "refresh": "30s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
        {"name": "instance", "type": "query", "label": "Node", "includeAll": True, "multi": True,
         "allValue": ".*", "current": {"text": "All", "value": "$__all"},
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "definition": "label_values(gavel_connections, instance)",
         "query": {"query": "label_values(gavel_connections, instance)", "refId": "instance"},
         "refresh": 2},
    ]},
    "annotations": {"list": []},
    "panels": panels,
}

out = pathlib.Path(__file__).with_name("gavel.json")
out.write_text(json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n")
print(f"wrote {out}")
