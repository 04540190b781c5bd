"""The `leadscore` command: start everything, migrate, replay, and sign webhooks to try them with curl."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from leadscore_pipeline.settings import Settings, get_settings


def _replay(wait: bool) -> None:
    from leadscore_pipeline.replay import ReplayError, launch_replay, replay_progress

    url = get_settings().dagster_base_url
    try:
        replay_id = launch_replay(url, trigger="cli")
        print(f"replay {replay_id} launched: follow it at {url}/runs/b/{replay_id}", flush=True)
        said = None
        while wait:
            progress = replay_progress(url, replay_id)
            line = f"replay {replay_id}: {progress.state}, {progress.buckets_done}/{progress.buckets_total} buckets"
            if line != said:  # a line per change, not per poll
                print(line, flush=True)
                said = line
            if progress.state in ("succeeded", "failed"):
                sys.exit(0 if progress.state == "succeeded" else 1)
            time.sleep(0.5)
    except ReplayError as exc:
        sys.exit(f"could not replay: {exc} (is `make up` running?)")


def _sign(body_file: str, secret: str | None, url: str) -> None:
    import shlex

    from leadscore_pipeline.ingest.webhook import sign_webhook

    secrets = get_settings().webhook_secret_list
    secret = secret or (secrets[0] if secrets else None)
    if not secret:
        sys.exit("no secret: pass --secret or set LEADSCORE_WEBHOOK_SECRETS")
    body = sys.stdin.buffer.read() if body_file == "-" else Path(body_file).read_bytes()
    headers = sign_webhook(body, secret)
    for name, value in headers.items():
        print(f"{name}: {value}")
    options = " ".join(f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items())
    data = "@-" if body_file == "-" else f"@{body_file}"
    print(f"\ncurl -X POST {url} -H 'content-type: application/json' {options} --data-binary {shlex.quote(data)}")


def _rebucket(buckets: int) -> None:
    import psycopg

    from leadscore_pipeline.db.engine import database_url
    from leadscore_pipeline.db.rebucket import database_buckets, rebucket
    from leadscore_pipeline.db.urls import libpq_url

    with psycopg.connect(libpq_url(database_url()), autocommit=True) as conn:
        before = database_buckets(conn)
        rebucket(conn, buckets)
    print(f"history re-split from {before} into {buckets} buckets; the pipeline rebuilds every score from it now")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="leadscore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start Postgres, migrations, the API and Dagster (webserver + daemon)")
    commands.add_parser("migrate", help="apply migrations and SQL models to LEADSCORE_DATABASE_URL")
    replay = commands.add_parser("replay", help="rescore everything from the raw events (a Dagster backfill)")
    replay.add_argument("--wait", action="store_true", help="wait until the backfill ends")
    commands.add_parser(
        "rebucket",
        help="re-split the history into LEADSCORE_LEAD_BUCKETS buckets; the pipeline then rebuilds the scores",
    )
    webhook = commands.add_parser("webhook", help="webhook helpers")
    webhook_commands = webhook.add_subparsers(dest="webhook_command", required=True)
    sign = webhook_commands.add_parser("sign", help="print Standard Webhooks headers (and a curl line) for a body")
    sign.add_argument("body", help="file with the JSON body, or - for standard input")
    sign.add_argument("--secret", help="whsec_... secret (default: the first of LEADSCORE_WEBHOOK_SECRETS)")
    sign.add_argument("--url", default=None, help="where the curl line posts (default: this API's /api/webhook)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()

    from leadscore_pipeline.db.rebucket import BucketCountMismatch

    try:
        _run(args, settings)
    except BucketCountMismatch as exc:
        sys.exit(str(exc))


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "up":
        from leadscore_pipeline.stack import run_stack

        run_stack(settings)
    elif args.command == "migrate":
        from leadscore_pipeline.db.engine import database_url
        from leadscore_pipeline.db.migrate import migrate

        migrate(database_url())
        if (settings.dagster_home / "dagster.yaml").exists():  # a stack's Dagster: show the views as materialized
            from leadscore_pipeline.dagster_home import record_views_created

            record_views_created(settings.dagster_home)
        print("database is at the current schema")
    elif args.command == "rebucket":
        _rebucket(settings.lead_buckets)
    elif args.command == "replay":
        _replay(args.wait)
    elif args.command == "webhook":
        _sign(args.body, args.secret, args.url or f"{settings.api_base_url}/api/webhook")


if __name__ == "__main__":
    main()
