from __future__ import annotations

from backend.domain.access import Policy, Principal, Role


def person(*roles: Role, sites: tuple[str, ...] = ("USZ",)) -> Principal:
    return Principal(user_id=1, username="u", full_name="U", roles=frozenset(roles), sites=frozenset(sites))


def test_role_is_required():
    rule = Policy(frozenset({Role.PHARMACIST}))
    assert rule.denial(person(Role.PHARMACIST), {}) is None
    reason = rule.denial(person(Role.COURIER), {})
    assert reason is not None
    assert "pharmacist" in reason
    assert "courier" in reason


def test_site_is_checked_unless_the_role_spans_sites():
    rule = Policy(
        frozenset({Role.COORDINATOR, Role.ADMIN}), site_param="site", any_site=frozenset({Role.ADMIN})
    )
    assert rule.denial(person(Role.COORDINATOR), {"site": "USZ"}) is None
    assert rule.denial(person(Role.COORDINATOR), {"site": "CTA"}) == "you are not assigned to site CTA"
    assert rule.denial(person(Role.ADMIN, sites=()), {"site": "CTA"}) is None
