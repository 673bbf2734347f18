"""Private listings (function/autotagger/web/access.py): the token in the header only, the open
lookup by asset_id, public mode, the token never logged, the CLI unaffected, CORS preflight.

Browser tests of the private page are in tests/e2e/test_private_page.py.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.access import LISTINGS, PRIVATE, TOKEN, auth, seed_documents


@pytest.fixture
def seeded(base_env: dict[str, str]) -> list[str]:
    """Three documents straight in the emulator; returns their asset_ids, newest first."""
    return seed_documents(base_env)


@pytest.mark.parametrize("path", LISTINGS)
@pytest.mark.parametrize(
    ("headers", "query", "error"),
    [
        ({}, "", None),
        (auth("wrong-" + TOKEN[6:]), "", "invalid_token"),
        (auth(TOKEN[:-1]), "", "invalid_token"),
        ({"Authorization": f"Basic {TOKEN}"}, "", None),
        ({}, f"token={TOKEN}", "invalid_request"),
        ({}, f"access_token={TOKEN}", "invalid_request"),
        (auth(), f"key={TOKEN}", "invalid_request"),
        (auth(), f"limit=5&x={TOKEN}", "invalid_request"),
    ],
    ids=["none", "wrong", "prefix", "basic", "query", "access_token", "query+header", "value"],
)
def test_private_listings_need_the_token_in_the_header(
    make_client, seeded, path: str, headers: dict[str, str], query: str, error: str | None
) -> None:
    client = make_client("results", **PRIVATE)
    url = f"{path}{'&' if '?' in path else '?'}{query}" if query else path
    response = client.get(url, headers=headers)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    assert TOKEN not in response.get_data(as_text=True)


def test_private_listings_with_the_token(make_client, seeded) -> None:
    client = make_client("results", **PRIVATE)
    recent, by_label, by_public_id = (client.get(path, headers=auth()) for path in LISTINGS)
    assert [r["asset_id"] for r in recent.get_json()["results"]] == seeded
    assert [r["asset_id"] for r in by_label.get_json()["results"]] == [seeded[0], seeded[2]]
    assert by_public_id.get_json()["count"] == 1
    assert client.get("/api/results?limit=1", headers=auth()).get_json()["count"] == 1
    # a lowercase scheme is still the Bearer scheme (RFC 7235: case-insensitive)
    lower = client.get("/api/results", headers={"Authorization": f"bearer {TOKEN}"})
    assert lower.status_code == 200


def test_lookup_by_asset_id_stays_open(make_client, seeded) -> None:
    client = make_client("results", **PRIVATE)
    found = client.get(f"/api/results?asset_id={seeded[1]}")
    assert found.status_code == 200
    assert [r["asset_id"] for r in found.get_json()["results"]] == [seeded[1]]
    # a guessed id is the same single point read as any miss: an empty list, not an error
    guessed = client.get(f"/api/results?asset_id={uuid.uuid4().hex}")
    assert guessed.status_code == 200
    assert guessed.get_json() == {"results": [], "count": 0}
    # ... but it cannot be combined with a listing filter to list without the key
    mixed = client.get(f"/api/results?asset_id={seeded[1]}&label=tabby")
    assert mixed.status_code == 401


def test_public_mode_is_todays_behaviour(make_client, seeded) -> None:
    client = make_client("results", RESULTS_ACCESS="public", RESULTS_TOKEN=TOKEN)
    for path in LISTINGS:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "WWW-Authenticate" not in response.headers
    assert client.get("/api/results").get_json()["count"] == 3
    assert client.get("/api/results?colour=red").status_code == 400


def test_private_without_a_configured_token_lists_nothing(make_client, seeded) -> None:
    client = make_client("results", RESULTS_ACCESS="private")
    response = client.get("/api/results", headers=auth())
    assert response.status_code == 503
    assert "RESULTS_TOKEN is not set" in response.get_json()["error"]
    assert client.get(f"/api/results?asset_id={seeded[0]}").status_code == 200


def test_the_token_is_never_logged(make_client, seeded, capfd) -> None:
    client = make_client("results", **PRIVATE, LOG_LEVEL="DEBUG")
    wrong = "W" * 40
    client.get("/api/results", headers=auth(wrong))
    client.get(f"/api/results?token={TOKEN}")
    client.get("/api/results", headers=auth())
    client.post("/api/sign-upload", json={"params_to_sign": {"eager": "x"}}, headers=auth())
    logged = "".join(capfd.readouterr())
    assert "listing results" in logged or "access key" in logged  # the 401s were logged ...
    assert TOKEN not in logged and wrong not in logged  # ... without any key


def test_cli_results_is_unaffected(seeded, monkeypatch, capsys) -> None:
    from autotagger import cli

    monkeypatch.setenv("RESULTS_ACCESS", "private")  # no RESULTS_TOKEN: the CLI needs none
    assert cli.main(["results", "--json"]) == 0
    assert [r["asset_id"] for r in json.loads(capsys.readouterr().out)["results"]] == seeded
    assert cli.main(["results", "--label", "tabby", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2


def test_preflight_allows_the_authorization_header(make_client) -> None:
    client = make_client("results", **PRIVATE, ALLOWED_ORIGINS="https://photos.example.com")
    response = client.options(
        "/api/results",
        headers={
            "Origin": "https://photos.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 204
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
