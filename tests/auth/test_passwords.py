"""Local console passwords (argon2id) and the lockout, on both backends: the form's answers, the stored hash, the
count of failures, the operator's unlock."""

from __future__ import annotations

from sqlalchemy import select

from tenantry.auth.models import ConsolePassword
from tenantry.auth.service import REFUSED
from tests.auth.conftest import ADMIN, PASSWORD, Console, sign_in


def _refusal(response: object) -> str:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    text: str = response.text  # type: ignore[attr-defined]
    assert "tenantry_session" not in str(response.headers.get_list("set-cookie"))  # type: ignore[attr-defined]
    return text


class TestPasswordSignIn:
    def test_the_right_password_signs_the_directory_user_in(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        r = sign_in(console.client, console.tenant, ADMIN, PASSWORD, next_path="/console/holds")
        assert r.status_code == 303 and r.headers["location"] == "/console/holds"
        me = console.client.get("/auth/session").json()
        assert (me["tenant"], me["user_id"], me["user_name"], me["method"]) == (
            console.tenant, console.admin, ADMIN, "password")

    def test_the_user_name_is_compared_as_the_directory_compares_it(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        assert sign_in(console.client, console.tenant, " ADMIN@Contoso.com", PASSWORD).status_code == 303

    def test_the_password_is_stored_as_an_argon2id_hash(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        with console.services.db.session() as session:
            stored = session.scalar(select(ConsolePassword.password_hash).where(
                ConsolePassword.user_id == console.admin))
        assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored

    def test_a_wrong_password_gets_the_same_answer_as_an_unknown_user(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        wrong = _refusal(sign_in(console.client, console.tenant, ADMIN, "not the password at all"))
        unknown = _refusal(sign_in(console.client, console.tenant, "nobody@contoso.com", PASSWORD))
        no_password = console.user("bob@contoso.com")
        without = _refusal(sign_in(console.client, console.tenant, "bob@contoso.com", PASSWORD))
        other_tenant = _refusal(sign_in(console.client, "no-such-tenant", ADMIN, PASSWORD))
        assert no_password
        for page in (wrong, unknown, without, other_tenant):
            assert "is wrong, or the account is locked" in page
        # The form comes back with what was typed (not the password), ready for another try.
        assert ADMIN in wrong and PASSWORD not in wrong

    def test_an_inactive_directory_user_cannot_sign_in_or_be_given_a_password(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        console.services.scim.patch(console.tenant, "User", console.admin, {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}]})
        _refusal(sign_in(console.client, console.tenant, ADMIN, PASSWORD))
        try:
            console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        except Exception as exc:  # noqa: BLE001 - the message is the point
            assert "not active" in str(exc)
        else:
            raise AssertionError("a password was set for an inactive user")

    def test_a_password_shorter_than_12_characters_is_refused(self, console: Console) -> None:
        try:
            console.signin.set_password(console.tenant, ADMIN, "short-pass1")
        except Exception as exc:  # noqa: BLE001
            assert "at least 12 characters" in str(exc)
        else:
            raise AssertionError("an 11-character password was accepted")


class TestLockout:
    def test_five_wrong_passwords_lock_even_the_right_one_out_until_the_lockout_ends(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        for _ in range(5):
            _refusal(sign_in(console.client, console.tenant, ADMIN, "wrong password, again"))
        page = _refusal(sign_in(console.client, console.tenant, ADMIN, PASSWORD))
        assert REFUSED.split(",")[0] in page          # the same answer: a lockout tells nobody the account exists
        assert console.signin.passwords.locked_until(console.tenant, console.admin) is not None
        console.clock.advance(minutes=14)
        _refusal(sign_in(console.client, console.tenant, ADMIN, PASSWORD))
        console.clock.advance(minutes=1, seconds=1)
        assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303

    def test_four_failures_then_the_right_password_start_the_count_again(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        for _ in range(4):
            _refusal(sign_in(console.client, console.tenant, ADMIN, "wrong password, again"))
        assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303
        for _ in range(4):
            _refusal(sign_in(console.client, console.tenant, ADMIN, "wrong password, again"))
        assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303

    def test_the_operator_unlocks_a_locked_account(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        for _ in range(5):
            _refusal(sign_in(console.client, console.tenant, ADMIN, "wrong password, again"))
        assert console.signin.unlock(console.tenant, ADMIN) == console.admin
        assert console.signin.passwords.locked_until(console.tenant, console.admin) is None
        assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303

    def test_setting_a_new_password_unlocks_and_ends_the_password_sessions(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303
        assert console.client.get("/auth/session").status_code == 200
        console.signin.set_password(console.tenant, ADMIN, "a brand new passphrase")
        assert console.client.get("/auth/session").status_code == 401
        assert sign_in(console.client, console.tenant, ADMIN, "a brand new passphrase").status_code == 303

    def test_parallel_guesses_are_counted_one_by_one_and_lock_the_account(self, console: Console) -> None:
        from concurrent.futures import ThreadPoolExecutor

        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        guess = console.signin.passwords.check
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: guess(console.tenant, console.admin, f"guess number {i:04}"),
                                    range(12)))
        assert not any(answers)
        assert console.signin.passwords.locked_until(console.tenant, console.admin) is not None
        assert guess(console.tenant, console.admin, PASSWORD) is False
