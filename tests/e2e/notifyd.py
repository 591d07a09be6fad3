"""A small org.freedesktop.Notifications server for the tests: owns the name on the session bus it
is given, answers every Notify with a new id, and appends what it received to a JSON-lines file
(with the unix uid of the caller, as the bus daemon reports it). It answers GetServerInformation
and GetCapabilities ("body", "body-markup") like a desktop's notification daemon.

Run by tests/e2e/test_notice.py as the employee, under Debian's python3 with a copy of jeepney
(pure Python) on PYTHONPATH: the session bus admits only its own user, and root's venv is not
theirs to read. Stops when the bus goes away or on SIGTERM.
"""

from __future__ import annotations

import json
import sys

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.Notifications"
INTERFACE = "org.freedesktop.Notifications"


def main(address: str, record_path: str) -> None:
    conn = open_dbus_connection(bus=address)
    reply = conn.send_and_get_reply(message_bus.RequestName(NAME, 4))  # 4: do not queue
    if reply.body[0] != 1:
        raise SystemExit(f"could not own {NAME}: {reply.body[0]}")
    print("ready", flush=True)
    next_id = 1
    while True:
        msg = conn.receive()
        if msg.header.message_type != MessageType.method_call:
            continue
        fields = msg.header.fields
        member = fields.get(HeaderFields.member)
        if fields.get(HeaderFields.interface) not in (INTERFACE, None) or member not in (
            "Notify",
            "GetCapabilities",
            "GetServerInformation",
        ):
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod"))
            continue
        if member == "GetCapabilities":
            conn.send(new_method_return(msg, "as", (["body", "body-markup"],)))
            continue
        if member == "GetServerInformation":
            conn.send(new_method_return(msg, "ssss", ("miwei-test", "miwei", "1", "1.2")))
            continue
        sender = fields.get(HeaderFields.sender)
        uid = conn.send_and_get_reply(message_bus.GetConnectionUnixUser(sender)).body[0]
        app, replaces, icon, summary, body, actions, hints, timeout = msg.body
        with open(record_path, "a", encoding="utf-8") as f:
            record = dict(
                app=app,
                replaces=replaces,
                icon=icon,
                summary=summary,
                body=body,
                actions=list(actions),
                hints=sorted(hints),
                timeout=timeout,
                uid=uid,
                signature=fields.get(HeaderFields.signature),
            )
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        conn.send(new_method_return(msg, "u", (next_id,)))
        next_id += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
