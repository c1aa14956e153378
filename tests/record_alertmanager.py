"""What a real Alertmanager sends for one growing group: ``python -m tests.record_alertmanager``.

Needs Alertmanager on the PATH as ``prometheus-alertmanager`` (Debian's package, 0.25). It
groups instances of one alert by ``alertname`` and ``service``; 3 instances fire, then 10, then
30, the group is sent again unchanged after its repeat interval, then all 30 resolve. Each
notification Alertmanager posts is written, in order, to
tests/fixtures/alerts/alertmanager_growing_group.json: what tests/test_alert_folding.py folds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "fixtures" / "alerts" / "alertmanager_growing_group.json"
ALERTMANAGER = "127.0.0.1:19093"
CONFIG = """
route:
  receiver: incidents
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 6s
receivers:
  - name: incidents
    webhook_configs:
      - url: http://127.0.0.1:{port}/alerts/alertmanager
        send_resolved: true
"""

received: list[dict[str, Any]] = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def post_alerts(count: int, ends_at: str | None = None) -> None:
    alerts = []
    for n in range(count):
        alert: dict[str, Any] = {
            "labels": {
                "alertname": "CheckoutErrorRate",
                "service": "checkout",
                "severity": "critical",
                "instance": f"checkout-{n:02d}:9090",
            },
            "annotations": {"summary": "Checkout 5xx above 5% for 5 minutes"},
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=checkout_errors",
        }
        if ends_at:
            alert["endsAt"] = ends_at
        alerts.append(alert)
    request = urllib.request.Request(
        f"http://{ALERTMANAGER}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).close()


def wait_for(notifications: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(received) < notifications:
        if time.monotonic() > deadline:
            sent = len(received)
            raise SystemExit(f"Alertmanager sent {sent} notifications, not {notifications}")
        time.sleep(0.1)


def main() -> None:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        raise SystemExit("install Alertmanager first (apt-get install prometheus-alertmanager)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "alertmanager.yml"
        config.write_text(CONFIG.format(port=server.server_address[1]))
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={scratch}",
                f"--web.listen-address={ALERTMANAGER}",
                "--cluster.listen-address=",
            ],
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.5)
            for step, count in enumerate((3, 10, 30), start=1):
                post_alerts(count)
                wait_for(step)
            wait_for(4)  # the repeat interval: the same 30 again
            post_alerts(30, ends_at=datetime.now(UTC).isoformat())
            wait_for(5)
        finally:
            process.terminate()
            process.wait()
    server.shutdown()
    OUT.write_text(json.dumps(received, indent=1) + "\n")
    print(f"{len(received)} notifications -> {OUT}")
    for notification in received:
        statuses = [a["status"] for a in notification["alerts"]]
        print(notification["status"], len(statuses), statuses.count("firing"), "firing")


if __name__ == "__main__":
    main()
