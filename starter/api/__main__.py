"""python -m starter.api: the API on API_HOST:API_PORT, configured from the environment.

A configuration error or an archive behind the code (`incident db upgrade` fixes it) is one
clear line and exit code 2, before anything is served.
"""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from clients.archive import IncidentArchive, SchemaBehind
from config import ConfigError, Settings
from logs import configure_logging
from starter.api.app import create_app


def main() -> None:
    try:
        settings = Settings()
        IncidentArchive(settings.database_url.get_secret_value()).check_current()
    except (ConfigError, ValidationError, SchemaBehind) as error:
        print(f"api: error: {error}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        # Our logging setup renders uvicorn's records too; our middleware logs each request.
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
