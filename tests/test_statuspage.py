"""The status page: component status follows the worst open public incident; HTML, JSON, Atom."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from starter.status import page as render
from workflows.models import Impact, PublicUpdate, Status
from workflows.statuspage import (
    Component,
    ComponentStatus,
    PublicIncident,
    component_statuses,
    status_page,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
COMPONENTS = [
    Component(name="Checkout", group="Shop"),
    Component(name="Search", group="Shop"),
    Component(name="API", group="Platform"),
    Component(name="Billing", group="Platform", maintenance=True),
]


def incident(
    number: int, impact: Impact, components: list[str], **fields: object
) -> PublicIncident:
    return PublicIncident.model_validate(
        {
            "id": f"incident-{number}",
            "number": number,
            "title": f"Incident {number}",
            "impact": impact,
            "components": components,
            "status": Status.INVESTIGATING,
            "declared_at": NOW - timedelta(hours=1),
            **fields,
        }
    )


def test_a_component_takes_the_worst_open_incident_touching_it() -> None:
    statuses = component_statuses(
        COMPONENTS,
        [
            incident(1, Impact.MINOR, ["Checkout", "Search"]),
            incident(2, Impact.CRITICAL, ["Checkout"]),
            incident(3, Impact.CRITICAL, ["API"], status=Status.RESOLVED, resolved_at=NOW),
            incident(4, Impact.MAJOR, ["Billing", "Unknown"]),
        ],
    )
    assert statuses == {
        "Checkout": ComponentStatus.MAJOR_OUTAGE,
        "Search": ComponentStatus.DEGRADED,
        "API": ComponentStatus.OPERATIONAL,  # its incident is resolved
        "Billing": ComponentStatus.PARTIAL_OUTAGE,  # worse than maintenance
    }


def test_the_page_shows_active_incidents_components_and_90_days_of_history() -> None:
    old = NOW - timedelta(days=120)
    incidents = [
        incident(
            7,
            Impact.MAJOR,
            ["Checkout"],
            title="Checkout <b>failing</b> & slow",
            updates=[
                PublicUpdate(
                    at=NOW - timedelta(minutes=50),
                    status=Status.INVESTIGATING,
                    message="We are looking into failed payments.",
                ),
                PublicUpdate(
                    at=NOW - timedelta(minutes=10),
                    status=Status.IDENTIFIED,
                    message="A bad deploy; rolling back.",
                ),
            ],
        ),
        incident(
            5,
            Impact.MINOR,
            ["Search"],
            status=Status.RESOLVED,
            resolved_at=NOW,
            declared_at=NOW - timedelta(days=2),
        ),
        incident(
            2, Impact.MINOR, ["Search"], status=Status.RESOLVED, resolved_at=old, declared_at=old
        ),
    ]
    page = status_page("Example", COMPONENTS, incidents, NOW)
    assert page.overall is ComponentStatus.PARTIAL_OUTAGE
    assert [i.number for i in page.active] == [7]
    assert [i.number for day in page.history.values() for i in day] == [5]
    form = render.SubscribeForm("/status/subscribe", render.component_groups(page))
    html = render.html(page, "/status/feed.atom", "/status.json", form)
    assert "Checkout &lt;b&gt;failing&lt;/b&gt; &amp; slow" in html, "people's text is escaped"
    assert html.index("rolling back") < html.index("failed payments"), "newest update first"
    assert 'class="state partial_outage">Partial outage' in html
    assert 'class="state under_maintenance">Under maintenance' in html
    assert '<form class="subscribe" method="post" action="/status/subscribe">' in html
    boxes = re.findall(r'name="components" value="([^"]+)"', html)
    assert boxes == ["Checkout", "Search", "API", "Billing"], "one checkbox per component"
    body = render.as_json(page)
    assert body["status"] == "partial_outage"
    assert {c["name"]: c["status"] for c in body["components"]}["Search"] == "operational"


def test_the_feed_is_atom_with_one_entry_per_public_incident() -> None:
    incidents = [
        incident(
            7,
            Impact.MAJOR,
            ["Checkout"],
            updates=[PublicUpdate(at=NOW, status=Status.IDENTIFIED, message="Rolling back.")],
        ),
        incident(5, Impact.MINOR, ["Search"], status=Status.RESOLVED, resolved_at=NOW),
    ]
    page = status_page("Example", COMPONENTS, incidents, NOW)
    feed = ElementTree.fromstring(render.atom(page, "https://status.example.com/", "x"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("a:entry", ns)
    assert [e.findtext("a:title", namespaces=ns) for e in entries] == ["Incident 7", "Incident 5"]
    assert "identified: Rolling back." in (entries[0].findtext("a:content", namespaces=ns) or "")


def test_a_refused_form_comes_back_filled_with_the_problem_named_and_escaped() -> None:
    form = render.SubscribeForm(
        "/status/subscribe",
        {"Shop": ["Checkout", "Search"]},
        email='"><script>x</script>',
        chosen=frozenset({"Search"}),
        errors={"email": "Enter an email address like name@example.com."},
    )
    page = render.message("Check the form", "Nothing was sent.", "/status", problem=True, form=form)
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in page and "<script>" not in page
    assert 'aria-invalid="true"' in page and "Enter an email address" in page
    assert 'value="Search" checked' in page and 'value="Checkout">' in page
