"""Small helpers for HTTP tests."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN_PASSWORD


async def login(client: AsyncTestClient[Any], username: str, password: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def admin(client: AsyncTestClient[Any]) -> dict[str, str]:
    return await login(client, "admin", ADMIN_PASSWORD)


async def make_site(
    client: AsyncTestClient[Any], headers: dict[str, str], code: str, kind: str = "hospital"
) -> None:
    response = await client.post(
        "/api/v1/sites",
        headers=headers,
        json={"code": code, "name": f"Site {code}", "kind": kind, "time_zone": "Europe/Zurich"},
    )
    assert response.status_code == 201, response.text


async def make_user(
    client: AsyncTestClient[Any],
    headers: dict[str, str],
    username: str,
    roles: list[str],
    sites: list[str],
    password: str = "correct horse battery",
) -> dict[str, str]:
    response = await client.post(
        "/api/v1/users",
        headers=headers,
        json={
            "username": username,
            "full_name": username.title(),
            "password": password,
            "roles": roles,
            "sites": sites,
        },
    )
    assert response.status_code == 201, response.text
    return await login(client, username, password)


def assert_problem(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"].startswith("urn:celltrail:problem:")
    for word in words:
        assert word in body["detail"], body
    return body
