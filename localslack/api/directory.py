"""auth.test, users.* and usergroups.*: who is who in the workspace."""

from dataclasses import replace

from ..errors import SlackError
from ..seed import BOT_ID, TEAM_DOMAIN, TEAM_ID, TEAM_NAME
from ..workspace import Workspace
from .registry import Args, Body, method, page


@method("auth.test")
def auth_test(ws: Workspace, args: Args) -> Body:
    user = ws.user(args.actor)
    body: Body = {
        "url": f"https://{TEAM_DOMAIN}.slack.com/",
        "team": TEAM_NAME,
        "user": user.name,
        "team_id": TEAM_ID,
        "user_id": user.id,
        "is_enterprise_install": False,
    }
    if user.is_bot:
        body["bot_id"] = BOT_ID
    return body


@method("users.info", user="user_not_found")
def users_info(ws: Workspace, args: Args) -> Body:
    return {"user": ws.user(args.text("user")).to_json()}


@method("users.list")
def users_list(ws: Workspace, args: Args) -> Body:
    users, meta = page(list(ws.users.values()), lambda u: u.id, args, default=200)
    return {"members": [u.to_json() for u in users], "cache_ts": 0, **meta}


@method("users.lookupByEmail", email="users_not_found")
def users_lookup_by_email(ws: Workspace, args: Args) -> Body:
    user = ws.users_by_email.get(args.text("email").lower())
    if user is None:
        raise SlackError("users_not_found")
    return {"user": user.to_json()}


@method("usergroups.list")
def usergroups_list(ws: Workspace, args: Args) -> Body:
    include_users = args.flag("include_users")
    return {"usergroups": [g.to_json(include_users) for g in ws.user_groups.values()]}


@method("usergroups.users.list", usergroup="no_such_subteam")
def usergroups_users_list(ws: Workspace, args: Args) -> Body:
    group = ws.user_groups.get(args.text("usergroup"))
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group.users)}


@method("usergroups.users.update", usergroup="no_such_subteam", users="no_users_provided")
def usergroups_users_update(ws: Workspace, args: Args) -> Body:
    """The group's whole membership becomes ``users`` (Slack cannot empty a group this way)."""
    group = ws.user_groups.get(args.text("usergroup"))
    if group is None:
        raise SlackError("no_such_subteam")
    users = list(dict.fromkeys(args.ids("users")))
    if not users:
        raise SlackError("no_users_provided")
    if any(u not in ws.users or ws.users[u].is_bot for u in users):
        raise SlackError("invalid_users")
    ws.user_groups[group.id] = updated = replace(group, users=tuple(users))
    return {"usergroup": updated.to_json(include_users=True)}
