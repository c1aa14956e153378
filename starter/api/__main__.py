"""python -m starter.api: the API on API_HOST:API_PORT, configured from the environment."""

from __future__ import annotations

import uvicorn

from config import Settings
from logs import configure_logging
from starter.api import create_app


def main() -> None:
    settings = Settings()
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
