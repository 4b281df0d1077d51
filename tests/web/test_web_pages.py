"""The web pages over HTTP (no browser): sign-in by form and cookie, the CSRF rule for cookie sessions,
security headers, redirects to sign-in, what each page shows, and the server-side frame decoder."""

from __future__ import annotations

import re
from typing import Any

import pytest

from backend.http.security import SESSION_COOKIE, csrf_token
from backend.web.session import safe_next
from tests.integration.helpers import assert_problem
from tests.integration.journey import PASSWORD, World, build_world, stored_bag


async def sign_in(client: Any, username: str, password: str = PASSWORD, next_: str = "/") -> str:
    client.cookies.clear()
    response = await client.post(
        "/login",
        data={"username": username, "password": password, "next": next_},
        headers={"Origin": str(client.base_url).rstrip("/")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    token = response.cookies.get(SESSION_COOKIE)
    assert token
    return str(token)


async def journey_to_transit(world: World) -> tuple[str, str, str]:
    coi = await world.new_case()
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    return coi, aph, ship


@pytest.fixture
async def world(client: Any) -> World:
    return await build_world(client)


async def test_pages_send_a_signed_out_person_to_sign_in_and_back(client, world):
    client.cookies.clear()
    response = await client.get("/board?status=in_transit", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/board%3Fstatus%3Din_transit"
    page = await client.get("/login?next=/board")
    assert page.status_code == 200
    assert 'name="next" value="/board"' in page.text
    response = await client.post(
        "/login",
        data={"username": "coord", "password": PASSWORD, "next": "/board"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/board"
    cookie = response.headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in session
    assert "samesite=strict" in session.lower()
    assert "Max-Age=" in session


async def test_a_wrong_password_shows_the_form_again_with_the_reason(client, world):
    client.cookies.clear()
    response = await client.post("/login", data={"username": "coord", "password": "nope", "next": "/"})
    assert response.status_code == 200
    assert "the username or password is wrong" in response.text
    assert SESSION_COOKIE not in response.cookies


async def test_sign_in_posted_from_another_site_is_refused(client, world):
    client.cookies.clear()
    response = await client.post(
        "/login",
        data={"username": "coord", "password": PASSWORD, "next": "/"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/board", "/board"), ("https://evil.example/", "/"), ("//evil.example", "/"), ("board", "/")],
)
def test_after_sign_in_only_paths_on_this_site_are_followed(target, expected):
    assert safe_next(target) == expected


async def test_each_role_lands_on_its_page(client, world):
    for username, home in (
        ("coord", "/board"),
        ("courier1", "/courier"),
        ("pharm", "/receipt"),
        ("mfg", "/receipt"),
        ("qa", "/board"),
    ):
        await sign_in(client, username)
        response = await client.get("/", follow_redirects=False)
        assert response.headers["location"] == home, username
        page = await client.get(home)
        assert page.status_code == 200, (username, page.text)
        assert username.title() in page.text  # who is signed in
        assert "session" in page.text


async def test_a_cookie_session_must_send_the_csrf_token_to_change_anything(client, world):
    token = await sign_in(client, "coord")
    body = {"treatment_site": "USZ", "therapy": "CAR-T"}
    refused = await client.post("/api/v1/cases", json=body)
    assert_problem(refused, 403, "CSRF")
    wrong = await client.post("/api/v1/cases", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert_problem(wrong, 403, "CSRF")
    accepted = await client.post("/api/v1/cases", json=body, headers={"X-CSRF-Token": csrf_token(token)})
    assert accepted.status_code == 201, accepted.text
    # Reading needs no token, and the bearer header needs none either (no cookie is involved).
    assert (await client.get("/api/v1/cases")).status_code == 200
    client.cookies.clear()
    assert (await world.call("coord", "POST", "/api/v1/cases", json=body)).status_code == 201


async def test_the_page_carries_the_csrf_token_for_its_session(client, world):
    token = await sign_in(client, "coord")
    page = await client.get("/board")
    match = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page.text)
    assert match
    assert match.group(1) == csrf_token(token)


async def test_sign_out_revokes_the_session(client, world):
    token = await sign_in(client, "coord")
    response = await client.post("/logout", headers={"X-CSRF-Token": csrf_token(token)})
    assert response.status_code == 204
    client.cookies.set(SESSION_COOKIE, token)
    again = await client.get("/board", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login?expired=true")


async def test_every_answer_carries_the_security_headers(client, world):
    await sign_in(client, "coord")
    for path in ("/board", "/login", "/api/v1/cases", "/static/app.css", "/healthz"):
        response = await client.get(path)
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["referrer-policy"] == "no-referrer", path
    page = await client.get("/board")
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # the policy forbids inline scripts; the pages have none


async def test_the_board_shows_an_active_shipment_and_filters_it(client, world):
    coi, _, ship = await journey_to_transit(world)
    await sign_in(client, "coord")
    page = await client.get("/board")
    assert f'data-shipment="{ship}"' in page.text
    assert "in transit" in page.text
    assert "pickup" in page.text
    assert "USZ-APH → CTA" in page.text
    for query, present in (
        (f"q={coi.lower()}", True),
        ("q=SHP-0000-000000", False),
        ("status=in_transit", True),
        ("status=arrived", False),
        ("severity=critical", False),
        ("site=CTA", True),
        ("site=CRX", False),
    ):
        rows = await client.get(f"/board/rows?{query}")
        assert (f'data-shipment="{ship}"' in rows.text) is present, query


async def test_the_board_shows_only_the_readers_sites(client, world):
    _, _, ship = await journey_to_transit(world)
    await sign_in(client, "qa")  # QA at CTA: the shipment goes to CTA
    assert f'data-shipment="{ship}"' in (await client.get("/board")).text
    root = world.headers["admin"]
    await client.post(
        "/api/v1/sites",
        headers=root,
        json={"code": "OTH", "name": "Other", "kind": "hospital", "time_zone": "UTC"},
    )
    await client.post(
        "/api/v1/users",
        headers=root,
        json={
            "username": "coord-other",
            "full_name": "Other Coordinator",
            "password": PASSWORD,
            "roles": ["coordinator"],
            "sites": ["OTH"],
        },
    )
    await sign_in(client, "coord-other")
    assert f'data-shipment="{ship}"' not in (await client.get("/board")).text
    hidden = await client.get(f"/shipments/{ship}")
    assert hidden.status_code == 404
    assert "text/html" in hidden.headers["content-type"]
    assert "no shipment" in hidden.text.lower()


async def test_a_role_without_the_page_is_told_so_on_a_page(client, world):
    await sign_in(client, "courier1")
    response = await client.get("/board")
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert "needs one of the roles" in response.text


async def test_shipment_and_case_pages_show_chart_timeline_labels_and_chain(client, world):
    coi, aph, ship = await journey_to_transit(world)
    await sign_in(client, "coord")
    page = await client.get(f"/shipments/{ship}")
    assert page.status_code == 200, page.text
    assert '<svg class="chart chart-wide"' in page.text
    assert '<svg class="chart chart-narrow"' in page.text  # drawn at a phone's width, its text full size
    assert "Chain verified: " in page.text
    assert f"/api/v1/labels/shipment/{ship}.pdf" in page.text
    for action in ("pack", "pickup"):
        assert f"{action}</strong>" in page.text
    case = await client.get(f"/cases/{coi}")
    assert case.status_code == 200
    assert aph in case.text
    assert "Chain verified" in case.text
    assert "MRN-0042" in case.text


async def test_the_receipt_desk_lists_expected_units_and_the_checklist(client, world):
    _, aph, ship = await journey_to_transit(world)
    await sign_in(client, "mfg")
    listing = await client.get("/receipt")
    assert f"/receipt/{ship}" in listing.text
    desk = await client.get(f"/receipt/{ship}")
    assert desk.status_code == 200
    assert f'data-item="{aph}"' in desk.text
    for item in ("Seals intact", "Shipper intact", "Temperature reviewed"):
        assert item in desk.text
    assert "received and verified" in desk.text  # the meaning of the signature is shown


async def test_the_server_reads_a_label_photo_like_the_scanner(client, world):
    _, _, ship = await journey_to_transit(world)
    await sign_in(client, "coord")
    png = await world.call("coord", "GET", f"/api/v1/labels/shipment/{ship}.png")
    assert png.status_code == 200
    client.cookies.clear()
    decoded = await client.post(
        "/api/v1/decode",
        content=png.content,
        headers={**world.headers["courier1"], "Content-Type": "image/png"},
    )
    assert decoded.status_code == 200, decoded.text
    kinds = {(c["kind"], c["display"]) for c in decoded.json()["codes"]}
    assert ("shipment", ship) in kinds
    garbage = await client.post(
        "/api/v1/decode",
        content=b"not an image",
        headers={**world.headers["courier1"], "Content-Type": "image/jpeg"},
    )
    assert_problem(garbage, 422, "image")


async def test_typed_codes_are_identified_with_their_case(client, world):
    coi, aph, ship = await journey_to_transit(world)
    answer = await world.ok("pharm", "POST", "/api/v1/identify", json={"codes": [aph, ship, "hello"]})
    unit, shipment, foreign = answer
    assert unit["kind"] == "unit"
    assert unit["coi"] == coi
    assert shipment["kind"] == "shipment"
    assert shipment["coi"] is None
    assert foreign["kind"] is None
    assert foreign["problem"]


async def test_the_sign_in_form_shares_the_lockout_and_says_when_to_try_again(client, world):
    client.cookies.clear()
    for _ in range(5):
        failed = await client.post("/login", data={"username": "coord", "password": "nope", "next": "/"})
        assert failed.status_code == 200
    locked = await client.post("/login", data={"username": "coord", "password": PASSWORD, "next": "/"})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert SESSION_COOKIE not in locked.cookies
    assert "too many failed sign-ins; try again in" in locked.text
    api = await client.post("/api/v1/auth/login", json={"username": "coord", "password": PASSWORD})
    assert_problem(api, 429)


async def test_times_are_in_the_sites_zone_24_hour_with_the_zone_named(client, world):
    _, _, ship = await journey_to_transit(world)
    await sign_in(client, "coord")
    page = await client.get(f"/shipments/{ship}")
    # The journey's sites are in Europe/Zurich: CET or CEST, never UTC nor a 12-hour clock.
    assert '<meta name="time-zone" content="Europe/Zurich">' in page.text
    assert re.search(r"\d{2} \w{3} \d{2}:\d{2} CES?T", page.text)
    assert " UTC<" not in page.text
    assert not re.search(r"\d{1,2}:\d{2} ?[AP]M", page.text)


@pytest.mark.parametrize(
    "form",
    ["{eye}", "{eye_body}", "&/{coi}", "]C0&/{coi}", "CT1:COI:{coi}", "{coi}", "{low}", "{ship}", "{aph}"],
)
async def test_the_board_search_finds_every_form_of_a_case_and_shipment(client, world, form):
    coi, aph, ship = await journey_to_transit(world)
    case = await world.ok("coord", "GET", f"/api/v1/cases/{coi}")
    eye = case["eye_readable"]
    query = form.format(
        eye=eye, eye_body=eye.rsplit(" [", 1)[0], coi=coi, low=coi.lower(), ship=ship, aph=aph
    )
    await sign_in(client, "coord")
    rows = await client.get("/board/rows", params={"q": query})
    assert f'data-shipment="{ship}"' in rows.text, query
    none = await client.get("/board/rows", params={"q": "SHP-2099-999999"})
    assert f'data-shipment="{ship}"' not in none.text


async def test_the_board_search_finds_a_container_and_a_logger(client, world):
    _, _, ship = await journey_to_transit(world)
    shipment = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}")
    await sign_in(client, "coord")
    rows = await client.get("/board/rows", params={"q": shipment["container_id"].lower()})
    assert f'data-shipment="{ship}"' in rows.text
    assert 'data-label="Temperature"' in rows.text  # phone cards name their fields


async def test_the_courier_page_has_a_service_worker_for_offline_use(client, world):
    await sign_in(client, "courier1")
    worker = await client.get("/courier-sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert "/courier" in worker.text
    page = await client.get("/courier")
    assert "/static/courier.js" in page.text


async def test_a_pharmacist_sees_the_stock_of_their_sites(client, world):
    await sign_in(client, "pharm")
    page = await client.get("/pharmacy")
    assert page.status_code == 200, page.text
    assert "Pharmacy stock" in page.text
    await sign_in(client, "coord")
    refused = await client.get("/pharmacy")
    assert refused.status_code == 403


async def test_a_bedside_stop_is_recorded_once_per_key_and_unknown_codes_write_nothing(client, world):
    coi, prc = await stored_bag(world)
    wristband = (await world.ok("pharm", "GET", f"/api/v1/cases/{coi}"))["barcode"]
    body = {"idempotency_key": "bedside-0001", "site": "USZ", "wristband": wristband, "bag": prc}
    first = await world.call("pharm", "POST", "/api/v1/bedside/verifications", json=body)
    assert first.status_code == 409, first.text
    assert first.headers["content-type"].startswith("application/problem+json")
    stop = first.json()
    assert (stop["verdict"], stop["refusal"], stop["cois"]) == ("STOP", "not_infusable", [coi])
    assert "not thawed" in stop["detail"]
    again = await world.call("pharm", "POST", "/api/v1/bedside/verifications", json=body)
    assert again.json()["event_ids"] == stop["event_ids"]  # the same answer, nothing recorded twice
    timeline = await world.ok("pharm", "GET", f"/api/v1/cases/{coi}/timeline")
    assert [e["refusal"] for e in timeline["events"] if e["action"] == "bedside_verify"] == ["not_infusable"]
    before = len(timeline["events"])
    unknown = await world.call(
        "pharm",
        "POST",
        "/api/v1/bedside/verifications",
        json={**body, "idempotency_key": "bedside-0002", "bag": "CHA999926ZZZZZZ-PRC-01"},
    )
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["detail"] == "no unit CHA999926ZZZZZZ-PRC-01"
    wrong = await world.call(
        "pharm",
        "POST",
        "/api/v1/bedside/verifications",
        json={**body, "idempotency_key": "bedside-0003", "wristband": prc},
    )
    assert wrong.status_code == 422
    assert "wristband" in wrong.json()["detail"]
    timeline = await world.ok("pharm", "GET", f"/api/v1/cases/{coi}/timeline")
    assert len(timeline["events"]) == before
