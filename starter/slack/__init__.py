"""The Slack app (``starter.slack.app``), the slash command it carries out and what it shows."""
