"""`loop health` for people: the running device's health report as a few readable lines."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from libloop.wording import plural

__all__ = ["format_health"]


def format_health(report: Mapping[str, Any], data_dir: Path) -> str:
    """The state, one line per component, the resources, the player, Wi-Fi and the recent faults."""
    head = f"LOOP on {data_dir}: {report.get('state', 'unknown')}"
    if isinstance(report.get("uptime_s"), int | float):
        head += f", up {_duration(float(report['uptime_s']))}"
    lines = [head]
    if report.get("emergency"):
        lines.append(f"Emergency: {report['emergency']}")
    exit_info = report.get("exit")
    if isinstance(exit_info, Mapping):
        lines.append(f"Exiting for a restart (status {exit_info.get('code')}): {exit_info.get('reason')}")
    components = [c for c in report.get("components") or [] if isinstance(c, Mapping)]
    if components:
        lines.append("Components:")
        width = max(len(str(c.get("name", ""))) for c in components)
        lines.extend(f"  {_component(c, width)}" for c in components)
    resources = report.get("resources")
    if isinstance(resources, Mapping):
        lines.append(f"Resources: {_resources(resources)}")
        lines.extend(f"  problem: {p}" for p in resources.get("problems") or [])
    player = report.get("player")
    if isinstance(player, Mapping):
        lines.append(f"Player: {_player(player)}")
    isolation = report.get("isolation")
    if isinstance(isolation, Mapping):
        lines.append(f"Playback: {_isolation(isolation)}")
    wifi = report.get("wifi")
    if isinstance(wifi, Mapping):
        lines.append(f"Wi-Fi: {_wifi(wifi)}")
    mqtt = report.get("mqtt")
    if isinstance(mqtt, Mapping) and mqtt.get("enabled"):
        if mqtt.get("connected"):
            lines.append(f"MQTT: connected to {mqtt.get('broker')} since {mqtt.get('since')}")
        else:
            broker = mqtt.get("broker", "the broker")
            lines.append(f"MQTT: NOT CONNECTED to {broker} ({mqtt.get('last_error')})")
    mdns = report.get("mdns")
    if isinstance(mdns, Mapping) and mdns.get("advertised"):
        lines.append(f"mDNS: advertised as {mdns.get('name')!r} on {', '.join(mdns.get('addresses', []))}")
    faults = [f for f in report.get("faults") or [] if isinstance(f, Mapping)][-5:]
    total = report.get("faults_total")
    if not faults:
        lines.append("Recent faults: none")
    else:
        count = total if isinstance(total, int) and total > len(faults) else len(faults)
        lines.append(f"Recent faults (last {len(faults)} of {count}):")
        for fault in faults:
            when = fault.get("time_iso") or fault.get("time", "")
            lines.append(f"  {when} {fault.get('component', '?')}: {fault.get('message', '')}")
    return "\n".join(lines)


def _component(c: Mapping[str, Any], width: int) -> str:
    state = "ok" if c.get("alive") else str(c.get("state") or "not alive").upper()
    notes = [str(c["detail"])] if c.get("detail") else []
    if isinstance(c.get("restarts"), int) and c["restarts"]:
        notes.append(plural(c["restarts"], "restart"))
    if isinstance(c.get("recent_failures"), int) and c["recent_failures"]:
        notes.append(f"{plural(c['recent_failures'], 'failure')} lately")
    if c.get("essential") is False:
        notes.append("not essential")
    text = f"{c.get('name', '?')!s:<{width}}  {state:<9}"
    return f"{text} {'; '.join(notes)}".rstrip()


def _isolation(i: Mapping[str, Any]) -> str:
    """Where the player runs and what scheduling it got."""
    where = f"own process (pid {i.get('pid')})" if i.get("mode") == "process" else "in the web process"
    sched = i.get("scheduling")
    if not isinstance(sched, Mapping):
        sched = {}
    if sched.get("policy") == "fifo":
        how = f"real-time (SCHED_FIFO {sched.get('priority')})"
    else:
        how = "ordinary scheduling"
        if sched.get("reason"):
            how += f": {sched['reason']}"
        if i.get("web_nice"):
            how += f"; the web app runs {i['web_nice']} nice steps lower"
    return f"{where}, {how}"


def _resources(r: Mapping[str, Any]) -> str:
    parts = [f"level {r.get('level', 'unknown')}"]
    if isinstance(r.get("cpu_percent"), int | float):
        parts.append(f"CPU {r['cpu_percent']:.0f} %")
    if isinstance(r.get("memory_percent"), int | float):
        memory = f"memory {r['memory_percent']:.0f} % used"
        if isinstance(r.get("memory_available_mb"), int):
            memory += f" ({r['memory_available_mb']} MB free)"
        parts.append(memory)
    if isinstance(r.get("process_rss_mb"), int):
        parts.append(f"LOOP uses {r['process_rss_mb']} MB")
    if isinstance(r.get("disk_free_mb"), int):
        disk = f"disk {r['disk_free_mb']} MB free"
        if isinstance(r.get("disk_total_mb"), int):
            disk += f" of {r['disk_total_mb']} MB"
        parts.append(disk)
    if isinstance(r.get("temperature_c"), int | float):
        parts.append(f"{r['temperature_c']:.0f} °C")
    return ", ".join(parts)


def _player(p: Mapping[str, Any]) -> str:
    text = str(p.get("state", "unknown"))
    if p.get("current_name"):
        text += f" {p['current_name']!r}"
    stats = p.get("stats")
    if isinstance(stats, Mapping):
        if p.get("state") == "playing" and isinstance(stats.get("fps"), int | float):
            text += f", {stats['fps']:.1f} frames a second"
        if isinstance(stats.get("frames_shown"), int):
            text += f", {plural(stats['frames_shown'], 'frame')} shown"
        if isinstance(stats.get("frames_dropped"), int):
            text += f", {stats['frames_dropped']} dropped"
    return text


def _wifi(w: Mapping[str, Any]) -> str:
    if not w.get("connected"):
        return f"not connected ({w['detail']})" if w.get("detail") else "not connected"
    text = f"connected to {w['ssid']}" if w.get("ssid") else "connected"
    if isinstance(w.get("signal_percent"), int | float):
        text += f" ({w['signal_percent']:.0f} % signal)"
    if w.get("ip"):
        text += f", {w['ip']}"
    return text


def _duration(seconds: float) -> str:
    if seconds < 60:
        return plural(int(seconds), "second")
    if seconds < 3600:
        return plural(int(seconds // 60), "minute")
    if seconds < 86400:
        return f"{plural(int(seconds // 3600), 'hour')} {plural(int(seconds % 3600 // 60), 'minute')}"
    return f"{plural(int(seconds // 86400), 'day')} {plural(int(seconds % 86400 // 3600), 'hour')}"
