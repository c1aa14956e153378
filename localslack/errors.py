"""The one way a Slack method fails: an error code, as Slack spells it."""

from typing import Any


class SlackError(Exception):
    """A failed Web API call; the server turns it into Slack's `{"ok": false}` answer.

    `status` stays 200 for ordinary errors because that is what Slack does; only rate
    limiting changes it (429 with Retry-After), which is what slack_sdk's retry handlers
    look at.
    """

    def __init__(
        self,
        code: str,
        *,
        status: int = 200,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.retry_after = retry_after
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, **self.extra}
