"""The forward budget against the stand-in: a flood of validly signed forwards spends at most
the budget of Admin API look-ups; a forged one spends nothing."""

from __future__ import annotations

from autotagger.config import load_settings
from autotagger.web import forward


def test_a_forward_flood_spends_at_most_the_budget(make_client, standin) -> None:
    client = make_client("on_upload", FORWARD_BUDGET_PER_MIN="3")
    account = load_settings().cloudinary
    assert account is not None
    answers = []
    for i in range(8):  # validly signed forwards of assets Cloudinary does not have
        public_id, version = f"flood/{i}", 1_700_000_000 + i
        signature = forward.expected_signature(public_id, version, account)
        body = {"public_id": public_id, "version": version, "signature": signature}
        answers.append(client.post("/forward", json=body))
    assert [a.status_code for a in answers] == [400] * 3 + [429] * 5
    for answer in answers[3:]:
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert "budget" in answer.get_json()["error"]
    admin_calls = [c for c in standin.calls if "/resources/" in c["path"]]
    assert len(admin_calls) == 3
    # a forged forward is refused before the budget: it spends nothing and says 401
    forged = client.post("/forward", json={"public_id": "x", "version": 1, "signature": "0" * 40})
    assert forged.status_code == 401
