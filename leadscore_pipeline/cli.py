"""The `leadscore` command: `up` starts everything, `migrate` brings a database to the current schema."""

from __future__ import annotations

import argparse
import logging

from leadscore_pipeline.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="leadscore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start Postgres, migrations, the API and Dagster (webserver + daemon)")
    commands.add_parser("migrate", help="apply migrations and SQL models to LEADSCORE_DATABASE_URL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()

    if args.command == "up":
        from leadscore_pipeline.stack import run_stack

        run_stack(settings)
    elif args.command == "migrate":
        from leadscore_pipeline.db.engine import database_url
        from leadscore_pipeline.db.migrate import migrate

        migrate(database_url())
        print("database is at the current schema")


if __name__ == "__main__":
    main()
