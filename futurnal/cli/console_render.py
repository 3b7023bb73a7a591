"""Admin console replies and events as text for people (``ctl`` without ``--json``, ``console``).

Replies quote folder names, server answers and quarantine reasons: every such field is made
:func:`~.output.visible` before it joins a line.
"""

from __future__ import annotations

import io
import json
from typing import Any

from .output import print_table, visible

__all__ = ["render_event", "render_reply", "summary_line"]


def render_reply(command: str, result: Any) -> str:
    """The reply to ``command`` as a few readable lines; JSON for anything without a layout."""
    renderer = _RENDERERS.get(command)
    return renderer(result) if renderer is not None else _json(result, indent=2)


def render_event(doc: dict[str, Any]) -> str:
    """One line for an event; made :func:`~.output.visible` whole, as no field may break it."""
    return visible(_event_line(doc))


def _event_line(doc: dict[str, Any]) -> str:
    kind, mailbox = doc.get("event", "?"), doc.get("mailbox", "")
    when = doc.get("time", "")
    if kind == "sync-started":
        what = ", ".join(doc["folders"]) or "its folders"
        return f"{when} {mailbox}: sync started ({what})"
    if kind == "sync-progress":
        return f"{when} {mailbox} {doc['folder']}: {doc['done']}/{doc['total']}"
    if kind == "sync-finished":
        errors = "".join(f"; {e['folder']} failed: {e['error']}" for e in doc["errors"])
        return f"{when} {mailbox}: sync finished, {doc['fetched']} new{errors}"
    if kind == "quarantined":
        return f"{when} {mailbox} {doc['folder']}: UID {doc['uid']} quarantined ({doc['reason']})"
    if kind in ("actor-restarting", "actor-stopped"):
        return f"{when} {doc['actor']}: died ({doc['reason']}), {kind.split('-')[1]}"
    if kind == "mailbox-throttled":
        return f"{when} {mailbox}: throttled until {doc['until']} ({doc['kind']}): {doc['reason']}"
    if kind.startswith("watch-"):
        return f"{when} {mailbox} {doc['folder']}: {kind[6:]} {doc.get('detail', '')}".rstrip()
    if kind == "dropped":
        return f"({doc['count']} event(s) dropped: this client fell behind)"
    return json.dumps(doc, ensure_ascii=False)


def _json(value: Any, indent: int | None = None) -> str:
    """JSON for people: line by line :func:`~.output.visible`, which leaves it valid JSON (JSON
    escapes C0 controls itself, and the other escapes read the same in JSON)."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return "\n".join(visible(line) for line in text.split("\n"))


def _table(rows: list[list[str]], headers: list[str]) -> str:
    out = io.StringIO()
    print_table(rows, headers, stream=out)
    return out.getvalue().rstrip("\n")


def _help(result: Any) -> str:
    if isinstance(result, dict):
        lines = [f"usage: {result['usage']}", f"  {result['summary']}"]
        lines += [f"  {p['name']}: {p['help']}" for p in result["params"] if p["help"]]
        return "\n".join(lines)
    return "\n".join(f"{item['usage']}\n    {item['summary']}" for item in result)


def _status(result: dict[str, Any]) -> str:
    shared = any("owner" in report for report in result["mailboxes"])  # a shared store: who runs each
    rows = []
    for report in result["mailboxes"]:
        live = report.get("live", {})
        state = live.get("state", "?")
        if report.get("needs_reauth"):
            state = "needs-reauth"
        elif held := report.get("throttled"):
            state = f"throttled until {held['until']}"
        mailbox_id = report["mailbox"]["id"]
        owner = [_owner(report.get("owner"))] if shared else []
        if not report["folders"]:
            rows.append([mailbox_id, "-", state, "-", "-", "never", str(live.get("inbox", "-")), *owner, ""])
        for folder in report["folders"]:
            rows.append([mailbox_id, folder["folder"], state, str(folder.get("messages", 0)), str(folder["stored"]),
                         folder.get("last_success") or "never", str(live.get("inbox", "-")), *owner,
                         folder.get("last_error") or ""])
    headers = ["MAILBOX", "FOLDER", "STATE", "ON SERVER", "STORED", "LAST SUCCESS", "INBOX",
               *(["RUN BY"] if shared else []), "LAST ERROR"]
    text = _table(rows, headers)
    queues = ", ".join(f"{actor} {depth}" for actor, depth in sorted(result["queues"].items()) if depth)
    return "\n".join(line for line in (text, summary_line(result), f"queued messages: {visible(queues or 'none')}") if line)


def _owner(owner: dict[str, Any] | None) -> str:
    """Who holds a mailbox's lease: this process, another (host, pid, until when), or nobody."""
    if owner is None:
        return "nobody (lease free)"
    where = "this process" if owner.get("here") else f"{visible(str(owner['host']))} pid {owner['pid']}"
    until = str(owner.get("lease_expires") or "")[11:19]  # UTC, as the status's other times
    return f"{where}, lease until {until}Z" if until else where


def summary_line(status: dict[str, Any]) -> str:
    """The ``summary`` of a ``status`` reply in one line (``ctl status``, ``top``); empty from a
    process that sends none."""
    s = status.get("summary")
    if s is None:
        return ""
    return (f"mailboxes: {s['mailboxes']}, {s['connected']} connected, {s['waiting_to_connect']} waiting to connect, "
            f"{s['syncing']} syncing, {s['idle']} idle; connections: {s['connections_open']} open, "
            f"{s['logins_waiting']} waiting for a login turn")


def _actors(result: dict[str, Any]) -> str:
    lines: list[str] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        extra = f", {node['restarts']} restart(s)" if node["restarts"] else ""
        queued = f", {node['inbox']} queued" if node["inbox"] else ""
        lines.append(visible(f"{'  ' * depth}{node['id']}: {node['state']}{extra}{queued}"))
        for child in node["children"]:
            walk(child, depth + 1)

    for root in result["tree"]:
        walk(root, 0)
    return "\n".join(lines)


def _sync(result: dict[str, Any]) -> str:
    if result["skipped"]:
        return visible(f"{result['mailbox']}: not synced ({result['skipped']})")
    lines = [f"{result['mailbox']} {f['folder']}: {f['fetched']} new message(s)" for f in result["folders"]]
    lines += [f"error: {result['mailbox']} {e['folder']}: {e['error']}" for e in result["errors"]]
    return "\n".join(map(visible, lines)) or visible(f"{result['mailbox']}: nothing to sync")


def _mailbox_state(result: dict[str, Any]) -> str:
    pending = " (a catch-up sync is due at resume)" if result.get("missed_while_paused") else ""
    return visible(f"{result['mailbox']}: {result['state']}{pending}")


def _quarantine(result: dict[str, Any]) -> str:
    if "records" in result:
        if not result["records"]:
            return "nothing in quarantine"
        return _table([[r["id"], r["mailbox"], r["folder"], str(r["uid"]), str(r["attempts"]), r["reason"]]
                       for r in result["records"]], ["ID", "MAILBOX", "FOLDER", "UID", "ATTEMPTS", "REASON"])
    if "dropped" in result:
        return visible(f"dropped {result['dropped']}")
    return "\n".join(visible(f"{o['record_id']}: stored as element {o['element_id']}" if o["element_id"]
                             else f"{o['record_id']}: {o['error']}") for o in result["outcomes"]) or "nothing in quarantine"


def _consent(result: dict[str, Any]) -> str:
    return visible(_consent_line(result))


def _consent_line(result: dict[str, Any]) -> str:
    if "revoked" in result:
        return (f"{result['mailbox']}: consent revoked; its actors are stopped" if result["revoked"]
                else f"{result['mailbox']}: had no consent recorded")
    consent = result["consent"]
    if consent is None:
        return f"{result['mailbox']}: no consent recorded"
    until = f", until {consent['expires_at']}" if consent.get("expires_at") else ""
    return f"{result['mailbox']}: {', '.join(consent['scopes'])} granted by {consent['granted_by']}{until}"


def _reload(result: dict[str, Any]) -> str:
    parts = [f"{label} {', '.join(result[label])}" for label in ("added", "removed", "restarted") if result[label]]
    if result["schedules_changed"]:
        parts.append("schedules updated")
    return visible(f"reloaded: {'; '.join(parts) or 'nothing changed'}")


_RENDERERS = {
    "help": _help, "status": _status, "actors": _actors, "sync": _sync, "pause": _mailbox_state,
    "resume": _mailbox_state, "quarantine": _quarantine, "consent": _consent, "reload": _reload,
    "shutdown": lambda _result: "stopping",
}
