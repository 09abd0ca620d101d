"""Comparisons, the targets of issue 8, and the Markdown summary written to ``BENCH.md``."""

from __future__ import annotations

import math
from typing import Any

#: BENCH.md below this line is hand-written and survives a rewrite by ``python -m bench all``.
KEEP_MARKER = "<!-- analysis below is hand-written; python -m bench keeps it when rewriting -->"
PROCESSES = ("broker", "worker", "sink", "ingress", "twilio-sim", "baseline_app", "loadgen")


def _step_at(steps: list[dict[str, Any]], rate: int) -> dict[str, Any] | None:
    return next((s for s in steps if s.get("offered_rate") == rate and "skipped" not in s), None)


def _skipped(steps: list[dict[str, Any]], rate: int) -> str | None:
    """Why the step at ``rate`` did not run (a lower rate already failed), if it did not."""
    why = (s["skipped"] for s in steps if s.get("offered_rate") == rate and "skipped" in s)
    return next(why, None)


def _at_most(value: float | None, limit: float, skipped: str | None) -> bool | None:
    """Met when measured within ``limit``; missed when the step was not reachable."""
    if skipped:
        return False
    return None if value is None else value <= limit


def _accepted(section: dict[str, Any] | None) -> float | None:
    """Highest achieved rate of a ladder step with at most 1 % errors."""
    if not section:
        return None
    rates = [
        s["achieved_rate"]
        for s in section["steps"]
        if "skipped" not in s and s["errors"] <= 0.01 * s["offered"]
    ]
    return max(rates, default=None)


def growth_exponent(state: dict[str, Any]) -> float | None:
    """k in (RSS - idle RSS) ~ messages**k, log-log least squares over the checkpoints."""
    idle = state.get("idle_rss_mb")
    points = [
        (math.log(c["messages"]), math.log(c["rss_mb"] - idle))
        for c in state.get("checkpoints", [])
        if idle is not None and c.get("rss_mb") and c["rss_mb"] - idle > 0.5
    ]
    if len(points) < 2:
        return None
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return None if var == 0 else round(sum((x - mx) * (y - my) for x, y in points) / var, 2)


def _held_ratio(send: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Highest rate held (p99 <= 250 ms, errors <= 1 %), smslane against the baseline."""
    ours, theirs = send.get("max_rate_p99_le_250ms"), baseline.get("max_rate_p99_le_250ms")
    if not ours or not theirs:
        return {"held_p99_250ms": {"smslane": ours, "baseline": theirs}}
    return {"held_p99_250ms": {"smslane": ours, "baseline": theirs,
                               "ratio": round(ours / theirs, 2)}}  # fmt: skip


def comparisons(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    send, baseline = results.get("send"), (results.get("baseline") or {}).get("http")
    ours, theirs = _accepted(send), _accepted(baseline)
    if ours and theirs and send and baseline:
        out["send_vs_http_baseline"] = {
            "smslane_max_accepted_per_s": ours,
            "baseline_max_accepted_per_s": theirs,
            "throughput_ratio": round(ours / theirs, 2),
            **_held_ratio(send, baseline),
            "p99_ratio_by_rate": {
                rate: round(p / b, 1)
                for rate, p in send["p99_ms_by_rate"].items()
                if (b := baseline["p99_ms_by_rate"].get(rate)) and p
            },
        }
    raw = (results.get("baseline") or {}).get("kafka")
    state = results.get("state")
    if raw and state and state.get("checkpoints"):
        phase = state["checkpoints"][0]["phases"]["callbacks"]
        out["faust_stage_vs_raw_kafka"] = {
            "worker_cpu_us_per_event": phase["worker_cpu_us_per_event"],
            "raw_cpu_us_per_event": raw["cpu_us_per_event"],
            "cpu_ratio": round(phase["worker_cpu_us_per_event"] / raw["cpu_us_per_event"], 1),
            "worker_events_per_s": phase["events_per_s"],
            "raw_events_per_s": raw["events_per_s"],
            "faust_stage_extra_us_per_event": round(
                phase["worker_cpu_us_per_event"] - raw["cpu_us_per_event"], 1
            ),
        }
    return out


def _target(name: str, goal: str, value: Any, met: bool | None, note: str = "") -> dict[str, Any]:
    return {"target": name, "goal": goal, "measured": value, "met": met, "note": note}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    send = results.get("send")
    if send:
        accepted = _accepted(send)
        rows.append(_target("send throughput", ">= 1000 accepted/s sustained", accepted,
                            accepted is not None and accepted >= 1000))  # fmt: skip
        at500 = _step_at(send["steps"], 500)
        p99 = None if at500 is None else at500["latency"]["p99_ms"]
        skipped = _skipped(send["steps"], 500)
        rows.append(_target("send p99 at 500 req/s", "<= 50 ms", p99,
                            _at_most(p99, 50, skipped),
                            f"not run: {skipped}" if skipped else ""))  # fmt: skip
    cb = results.get("callbacks")
    if cb:
        best = cb["max_sustained_rate"]
        note = f"for {cb['sustain_s']:.0f} s with GET lag p99 <= 1 s, lag bounded"
        rows.append(_target("callbacks sustained end to end", ">= 3000/s",
                            best, best is not None and best >= 3000, note))  # fmt: skip
        at1000 = _step_at(cb["steps"], 1000)
        web = None if at1000 is None else at1000["latency"]["p99_ms"]
        vis = None if at1000 is None else at1000["visibility"]["p99_ms"]
        skipped = _skipped(cb["steps"], 1000)
        note = f"not run: {skipped}" if skipped else ""
        rows.append(_target("webhook p99 at 1000 callbacks/s", "<= 20 ms", web,
                            _at_most(web, 20, skipped), note))  # fmt: skip
        rows.append(_target("GET freshness lag p99 at 1000 callbacks/s", "<= 1000 ms", vis,
                            _at_most(vis, 1000, skipped), note))  # fmt: skip
    vs = comparisons(results).get("send_vs_http_baseline")
    if vs:
        ratio = vs["throughput_ratio"]
        rows.append(_target("send throughput vs no-Kafka baseline", ">= 0.5x", ratio,
                            ratio >= 0.5))  # fmt: skip
    state = results.get("state")
    if state and state.get("checkpoints"):
        k = growth_exponent(state)
        note = f"measured up to {state['measured_max_messages']:,} messages"
        rows.append(_target("worker RSS sub-linear in live messages",
                            "growth exponent k < 1 in (RSS - idle) ~ messages^k", k,
                            None if k is None else k < 1.0, note))  # fmt: skip
        top = state["checkpoints"][-1]
        ready = [top["warm_restart"]["ready_s"]]
        if "cold_restart" in top:
            ready.append(top["cold_restart"]["ready_s"])
        extra = state.get("extrapolation") or {}
        at_1m = [
            extra.get(k, {}).get("at_1000000") for k in ("warm_ready_s", "cold_ready_s")
            if extra.get(k)
        ]  # fmt: skip
        worst = max((v for v in at_1m if v is not None), default=None)
        measured = top["messages"]
        shown = f"{measured:,} messages: warm {ready[0]} s" + (
            f", cold {ready[1]} s" if len(ready) > 1 else ""
        )
        if at_1m:
            shown += "; 1M extrapolated: " + ", ".join(
                f"{kind} {v} s" for kind, v in zip(("warm", "cold"), at_1m, strict=False)
            )
        rows.append(_target(
            "restart-to-ready at 1M messages", "<= 30 s", shown,
            max(ready) <= 30 if measured >= 1_000_000 else None if worst is None else worst <= 30,
            "warm and cold; 1M figure extrapolated linearly" if measured < 1_000_000 else "",
        ))  # fmt: skip
    return rows


# -- Markdown -------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 10:
            return f"{value:,.0f}"
        if abs(value) < 10:
            return f"{value:.2f}"
        return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cores(step: dict[str, Any]) -> str:
    procs = step.get("cpu", {}).get("processes", {})
    parts = [
        f"{name} {procs[name]['cores']:.2f}"
        for name in PROCESSES
        if name in procs and procs[name].get("cores") is not None
    ]
    return ", ".join(parts)


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _ladder(section: dict[str, Any]) -> list[str]:
    rows = []
    for s in section["steps"]:
        if "skipped" in s:
            rows.append([s["offered_rate"], "skipped", "", "", "", "", s["skipped"], "", ""])
            continue
        lat = s["latency"]
        errors = {k: v for k, v in s["statuses"].items() if not k.startswith("2")}
        rows.append([
            s["offered_rate"], s["achieved_rate"], lat["p50_ms"], lat["p99_ms"], lat["p999_ms"],
            s["errors"], ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none",
            s["load_average_at_start"][0], _cores(s),
        ])  # fmt: skip
    return _table(
        ["offered/s", "achieved/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "by status",
         "load", "CPU cores by process"], rows,
    )  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    m, v = results["machine"], results["versions"]
    out = [
        "# Benchmarks",
        "",
        f"Run of `{results['command']}` on {results['date']} "
        f"({results['duration_s'] / 60:.1f} min after {results['load_wait']['waited_s']} s "
        f"waiting for a lower load; mode `{results['mode']}`); raw figures in "
        f"`bench/results/{results['file']}`. How to run and what each figure means: "
        "[`bench/README.md`](bench/README.md).",
        "",
        f"- Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB RAM, "
        f"Linux {m['kernel']}; load average at start {m['load_average']}",
        f"- Versions: Python {v['python']}, Kafka {v['kafka']}, faust-streaming "
        f"{v['faust-streaming']}, aiokafka {v['aiokafka']}, FastAPI {v['fastapi']}, uvicorn "
        f"{v['uvicorn']}, twilio {v['twilio']}",
        "- Everything (broker, worker, sink, ingress, simulator, load generator) shares the "
        "machine; CPU is in cores (CPU seconds / wall seconds) per process over the window.",
        "",
        "## Targets",
        "",
    ]
    out += _table(
        ["target", "goal", "measured", "met", "note"],
        [[t["target"], t["goal"], t["measured"], {True: "yes", False: "**no**", None: "n/a"}[
            t["met"]], t["note"]] for t in results.get("targets", [])],
    )  # fmt: skip
    if results.get("send"):
        out += ["", "## Send path: `POST /v1/sms/`", "", results["send"]["criterion"], ""]
        out += _ladder(results["send"])
    base = results.get("baseline") or {}
    if base.get("http"):
        out += ["", "## Baseline (a): FastAPI + twilio, no Kafka", ""]
        out += _ladder(base["http"])
    comp = results.get("comparisons", {})
    if comp:
        out += ["", "## Ratios", ""]
        for name, values in comp.items():
            out.append(f"- `{name}`: " + ", ".join(f"{k} = {_fmt(x)}" for k, x in values.items()))
    if base.get("kafka"):
        k = base["kafka"]
        out += ["", "## Baseline (b): raw aiokafka relay", "",
                f"{k['events']:,} events in {k['seconds']} s = {k['events_per_s']:,} events/s, "
                f"{k['cpu_us_per_event']} µs CPU/event "
                f"(load {k['load_average_at_start'][0]})."]  # fmt: skip
    sink = results.get("sink")
    if sink:
        out += ["", "## Sink alone (bench/sink_throughput.py)", "",
                f"{sink['events']:,} `sms.status` events ({sink['records']:,} records x 3 "
                f"versions) into {sink['backend']}: {sink['events_per_s']:,} events/s "
                f"(steady {_fmt(sink['steady_events_per_s'])}/s; load "
                f"{sink['load_average_at_start'][0]})."]  # fmt: skip
    cb = results.get("callbacks")
    if cb:
        out += ["", "## Callbacks end to end", "", cb["criterion"], ""]
        rows = []
        for s in cb["steps"] + [{**x, "sustain": True} for x in cb["sustained"]]:
            if "skipped" in s:
                rows.append([s["offered_rate"], "skipped", "", "", "", "", "", "", s["skipped"]])
                continue
            vis = s["visibility"]
            rows.append([
                f"{_fmt(s['offered_rate'])}{' (sustain)' if s.get('sustain') else ''}",
                s["achieved_rate"], s["latency"]["p50_ms"], s["latency"]["p99_ms"],
                vis["p50_ms"], vis["p99_ms"], f"{s['lag_max']['worker']}/{s['lag_max']['sink']}",
                s["drain_s"], f"{'holds' if s['holds'] else 'fails'}; load "
                f"{s['load_average_at_start'][0]}; {_cores(s)}",
            ])  # fmt: skip
        out += _table(
            ["callbacks/s", "achieved/s", "webhook p50", "webhook p99", "GET lag p50",
             "GET lag p99", "max lag worker/sink", "drain s", "verdict, load, CPU cores"], rows,
        )  # fmt: skip
    st = results.get("state")
    if st:
        out += ["", "## Worker state and restarts (rocksdb://)", "",
                f"Idle RSS {st['idle_rss_mb']} MB; first start to ready "
                f"{st['first_start_ready_s']} s.", ""]  # fmt: skip
        rows = []
        for c in st["checkpoints"]:
            rows.append([
                c["messages"], c["rss_mb"], c["tables"]["rocksdb_mb"]["record_by_sid"],
                c["tables"].get("record_by_sid_changelog_mb"),
                c["phases"]["created"]["events_per_s"], c["phases"]["callbacks"]["events_per_s"],
                c["phases"]["callbacks"]["worker_cpu_us_per_event"],
                c["warm_restart"]["ready_s"], (c.get("cold_restart") or {}).get("ready_s"),
            ])  # fmt: skip
        out += _table(
            ["live messages", "worker RSS MB", "record_by_sid RocksDB MB", "changelog MB",
             "created events/s", "callback events/s", "worker µs CPU/event", "warm ready s",
             "cold ready s"], rows,
        )  # fmt: skip
        extra = st.get("extrapolation")
        if extra:
            items = ", ".join(f"{k} {v}" for k, v in extra.items() if k != "basis")
            out += ["", f"Extrapolation ({extra['basis']}): {items}"]
    out += ["", "## Notes", ""] + [f"- {n}" for n in results.get("notes", [])]
    return "\n".join(out) + "\n"


def main() -> None:
    """``python -m bench.report RESULTS.json [BENCH.md]``: (re)write the summary of a run."""
    import json
    import sys
    from pathlib import Path

    source = Path(sys.argv[1])
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parents[1] / "BENCH.md"
    results = json.loads(source.read_text())
    results["comparisons"] = comparisons(results)
    results["targets"] = targets(results)
    old = target.read_text() if target.exists() else ""
    kept = old.split(KEEP_MARKER, 1)[1] if KEEP_MARKER in old else "\n"
    target.write_text(markdown(results) + "\n" + KEEP_MARKER + kept)
    print(f"summary: {target}")


if __name__ == "__main__":
    main()
