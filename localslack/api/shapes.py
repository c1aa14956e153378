"""Objects as Slack's responses spell them."""

from typing import Any

from ..channel import Channel, Message, Pin


def channel_json(channel: Channel, viewer: str) -> dict[str, Any]:
    if channel.is_im:
        other = next((m for m in channel.members if m != viewer), viewer)
        return {
            "id": channel.id,
            "created": channel.created,
            "is_im": True,
            "is_org_shared": False,
            "user": other,
            "is_user_deleted": False,
            "priority": 0,
        }
    return {
        "id": channel.id,
        "name": channel.name,
        "is_channel": channel.is_channel,
        "is_group": False,
        "is_im": False,
        "is_mpim": channel.is_mpim,
        "is_private": channel.is_private or channel.is_mpim,
        "created": channel.created,
        "creator": channel.creator,
        "is_archived": channel.is_archived,
        "is_general": channel.is_general,
        "unlinked": 0,
        "name_normalized": channel.name,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "pending_shared": [],
        "is_pending_ext_shared": False,
        "is_member": viewer in channel.members,
        "topic": channel.topic_json("topic"),
        "purpose": channel.topic_json("purpose"),
        "previous_names": list(channel.previous_names),
        "num_members": len(channel.members),
    }


def history_message(message: Message, with_metadata: bool) -> Message:
    if with_metadata or "metadata" not in message:
        return message
    return {k: v for k, v in message.items() if k != "metadata"}


def pin_json(channel: Channel, ts: str, pin: Pin) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": channel.id,
        "created": pin.at,
        "created_by": pin.by,
        "message": channel.by_ts[ts],
    }
