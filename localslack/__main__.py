"""`python -m localslack`: the emulator on its own, until SIGINT or SIGTERM."""

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from config import EmulatorSettings, reveal

from . import control
from .server import SlackEmulator


def _arguments(settings: EmulatorSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localslack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3090)
    parser.add_argument("--broadcast-channel", default="incidents")
    parser.add_argument(
        "--per-channel-rate-limit",
        action="store_true",
        help="answer 429 beyond Slack's one message per second per channel",
    )
    parser.add_argument(
        "--canvases",
        choices=("paid", "free", "off"),
        default="paid",
        help="which canvases the workspace allows: all (paid), one tab a channel and no "
        "standalone canvas (free), none (off); POST /_emulator/canvases changes it later",
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        metavar="FILE",
        help="keep the workspace in this JSON file: loaded at start, saved as it changes",
    )
    parser.add_argument(
        "--app-url",
        default=settings.app_url,
        help="the Slack app to drive from the page (its /slack/events; default "
        "LOCALSLACK_APP_URL); requests are signed with SLACK_SIGNING_SECRET",
    )
    return parser.parse_args()


async def _serve(args: argparse.Namespace, settings: EmulatorSettings) -> None:
    emulator = SlackEmulator(
        broadcast_channel=args.broadcast_channel,
        per_channel_rate_limit=args.per_channel_rate_limit,
    )
    saver = None
    if args.snapshot is not None:
        if control.load(emulator.workspace, args.snapshot):
            print(f"localslack: workspace restored from {args.snapshot}", file=sys.stderr)
        saver = asyncio.create_task(control.Snapshots(emulator, args.snapshot).run())
    emulator.workspace.canvas_plan = args.canvases
    emulator.console.app_url = args.app_url
    emulator.console.signing_secret = reveal(settings.slack_signing_secret) or ""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    base_url = await emulator.start(host=args.host, port=args.port)
    # stdout carries only the base URL, so launchers (make run, end-to-end tests) can
    # read it as is; the hint for people goes to stderr.
    print(base_url, flush=True)
    page = base_url.removesuffix("api/")
    print(f"localslack: Web API at {base_url}, workspace page at {page}", file=sys.stderr)
    try:
        await stopping.wait()
    finally:
        await emulator.stop()
        if saver is not None:
            saver.cancel()
            await asyncio.gather(saver, return_exceptions=True)


def main() -> None:
    settings = EmulatorSettings()
    asyncio.run(_serve(_arguments(settings), settings))


if __name__ == "__main__":
    main()
