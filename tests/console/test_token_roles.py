"""The tokens page makes a token with a role (analyst unless an admin is asked for) and shows it."""

from __future__ import annotations


def _new_token(answer) -> str:
    return answer.text.split('id="new-token">')[1].split("<")[0]


def test_a_console_made_token_is_an_analyst_unless_admin_is_chosen(admin, post_form, client, store):
    page = admin.get("/console/tokens").text
    assert '<option value="analyst" selected>' in page  # least privilege is what one gets by default

    plain = _new_token(post_form(admin, "/console/tokens", "/console/tokens", {"name": "siem"}))
    assert store.api_token(plain) == ("siem", "analyst")
    assert client.put("/api/v1/policy", json={"files": []}, headers={"Authorization": f"Bearer {plain}"}).status_code == 403

    strong = _new_token(post_form(admin, "/console/tokens", "/console/tokens", {"name": "deploy", "role": "admin"}))
    assert store.api_token(strong) == ("deploy", "admin")
    listing = admin.get("/console/tokens").text
    assert listing.count("<td>Analyst</td>") + listing.count("<td>analyst</td>") == 1, listing


def test_an_unknown_role_is_refused(admin, post_form, store):
    answer = post_form(admin, "/console/tokens", "/console/tokens", {"name": "x", "role": "root"})
    assert answer.status_code == 422
