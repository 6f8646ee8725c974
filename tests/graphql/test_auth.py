"""Accounts and sessions over real HTTP: sign up, sign in, sign out, the rate limit."""

from __future__ import annotations

import secrets

from tests.graphql.support import Api, sign_up

VIEWER = "{ viewer { id email } }"
SIGN_IN = (
    "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { __typename"
    " ... on SignedIn { viewer { email } } ... on RateLimited { retryAfterSeconds } ... on Problem { message } } }"
)


def test_signing_up_signs_in_and_sets_an_httponly_session_cookie(api: Api) -> None:
    viewer = sign_up(api, email="Ada@Example.com ")
    assert viewer["email"] == "ada@example.com"
    assert api.run(VIEWER).ok()["viewer"] == viewer
    raw = " ".join(t for t in api.transcript if "set-cookie" in t)
    assert "botkiln_session=" in raw and "HttpOnly" in raw and "SameSite=lax" in raw


def test_sign_out_ends_the_session_even_for_a_copied_cookie(base_url: str, api: Api) -> None:
    sign_up(api)
    stolen = api.cookies["botkiln_session"]
    assert api.run("mutation { signOut { ok } }").ok() == {"signOut": {"ok": True}}
    assert api.run(VIEWER).ok() == {"viewer": None}
    thief = Api(base_url)
    thief.cookies.set("botkiln_session", stolen)
    assert thief.run(VIEWER).ok() == {"viewer": None}
    thief.close()


def test_sign_in_answers_wrong_email_and_wrong_password_alike(api: Api, base_url: str) -> None:
    email = f"s{secrets.token_hex(4)}@example.com"
    sign_up(api, email=email, password="the right password")
    other = Api(base_url)
    wrong_password = other.run(SIGN_IN, {"e": email, "p": "not the password"}).ok()["signIn"]
    wrong_email = other.run(SIGN_IN, {"e": "nobody-" + email, "p": "not the password"}).ok()["signIn"]
    assert (
        wrong_password
        == wrong_email
        == {"__typename": "InvalidCredentials", "message": "the email or the password is wrong"}
    )
    signed_in = other.run(SIGN_IN, {"e": email, "p": "the right password"}).ok()["signIn"]
    assert signed_in == {"__typename": "SignedIn", "viewer": {"email": email}}
    other.close()


def test_sign_in_is_rate_limited_per_email_and_address(api: Api, base_url: str) -> None:
    email = f"r{secrets.token_hex(4)}@example.com"
    sign_up(api, email=email, password="the right password")
    attacker = Api(base_url)
    for _ in range(5):
        assert attacker.run(SIGN_IN, {"e": email, "p": "guess"}).ok()["signIn"]["__typename"] == "InvalidCredentials"
    # Even the right password is refused now, without being checked
    limited = attacker.run(SIGN_IN, {"e": email, "p": "the right password"}).ok()["signIn"]
    assert limited["__typename"] == "RateLimited" and 0 < limited["retryAfterSeconds"] <= 900
    attacker.close()


def test_sign_up_refuses_a_taken_email_and_bad_input(api: Api, base_url: str) -> None:
    email = f"t{secrets.token_hex(4)}@example.com"
    sign_up(api, email=email)
    again = Api(base_url)
    query = (
        "mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) { __typename"
        " ... on InvalidInput { field } ... on EmailTaken { email } } }"
    )
    assert again.run(query, {"e": email, "p": "long enough pw"}).ok()["signUp"] == {
        "__typename": "EmailTaken",
        "email": email,
    }
    assert again.run(query, {"e": "not-an-email", "p": "long enough pw"}).ok()["signUp"]["field"] == "email"
    assert again.run(query, {"e": "x" + email, "p": "short"}).ok()["signUp"]["field"] == "password"
    again.close()
