"""Accounts and sign-in through the gateway, over the real processes, broker and SMTP server."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from tests.e2e.ticket_helpers import form_login

ROLES = ("admin", "agent", "sales", "client", "reseller")


def _email(prefix: str, domain: str = "client.example") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}@{domain}"


def _address() -> dict[str, str]:
    """An address of its own for this test (failed sign-ins are counted per address)."""
    return {
        "X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    }


def _person(system, role: str) -> dict:
    customer = str(uuid.uuid4()) if role in ("client", "reseller") else None
    return system.create_user(_email(role, "a6telecom.example"), role, customer_id=customer)


def _link_from_mail(system, recipient: str, path: str) -> str:
    mail = system.smtp.wait_for(
        lambda m: m["To"] == recipient and path in m.get_body(("plain",)).get_content()
    )
    return re.search(rf"(http\S+/{path}/\S+)", mail.get_body(("plain",)).get_content()).group(1)


def _code_from_mail(system, recipient: str, after: int = 0) -> str:
    mail = system.smtp.wait_for(
        lambda m: (
            m["To"] == recipient
            and "code de connexion" in str(m["Subject"])
            and system.smtp.messages.index(m) >= after
        )
    )
    return re.search(r"\b(\d{6})\b", str(mail["Subject"])).group(1)


@pytest.fixture(scope="module")
def people(system) -> dict[str, dict]:
    people = {role: _person(system, role) for role in ROLES}
    with system.client() as http:
        for person in people.values():
            person["headers"] = system.login(http, person["email"], person["password"])
    return people


def _admin_actions(system, target_id: str) -> dict:
    new_email = _email("nouveau", "a6telecom.example")
    return {
        "list": ("GET", "/api/v1/users?q=a6telecom", None),
        "get": ("GET", f"/api/v1/users/{target_id}", None),
        "create": ("POST", "/api/v1/users", {"email": new_email, "name": "Nouveau", "role": "agent"}),
        "update": ("PATCH", f"/api/v1/users/{target_id}", {"name": "Nom modifié"}),
        "change_role": ("PATCH", f"/api/v1/users/{target_id}", {"role": "sales"}),
        "deactivate": ("POST", f"/api/v1/users/{target_id}/deactivate", None),
        "reactivate": ("POST", f"/api/v1/users/{target_id}/reactivate", None),
        "resend_invitation": ("POST", f"/api/v1/users/{target_id}/invitation", None),
        "revoke_sessions": ("POST", f"/api/v1/users/{target_id}/sessions/revoke", None),
        "signup_requests": ("GET", "/api/v1/signup-requests", None),
        "audit": ("GET", "/api/v1/audit", None),
        "role_policies": ("GET", "/api/v1/security/role-policies", None),
        "locks": ("GET", "/api/v1/security/locks", None),
    }


def test_only_admins_may_use_the_user_admin_endpoints(system, people):
    target = _person(system, "agent")
    outcomes = {}
    with system.client() as http:
        for role in ROLES:
            for action, (method, path, body) in _admin_actions(system, target["id"]).items():
                response = http.request(method, path, json=body, headers=people[role]["headers"])
                outcomes[(role, action)] = response.status_code
                if role != "admin":
                    assert response.json()["detail"] == "Cette action est réservée aux superviseurs.", (
                        role,
                        action,
                    )
        anonymous = http.get("/api/v1/users").status_code
    for (role, action), status in outcomes.items():
        if role == "admin":
            assert 200 <= status < 300, (role, action, status)
        else:
            assert status == 403, (role, action, status)
    assert anonymous == 401


def test_new_user_chooses_a_password_through_the_invitation_link(system, people):
    email = _email("invite", "a6telecom.example")
    with system.client() as http:
        created = http.post(
            "/api/v1/users",
            json={"email": email, "name": "Inès Invitée", "role": "sales"},
            headers=people["admin"]["headers"],
        )
        assert created.status_code == 201, created.text
        assert created.json()["password_set"] is False
        link = _link_from_mail(system, email, "invitation")
        token = link.rsplit("/", 1)[1]
        page = http.get(link.replace(system.base_url, ""))
        assert page.status_code == 200 and "Inès Invitée" in page.text
        weak = http.post("/api/v1/auth/invitation/accept", json={"token": token, "password": "azerty123"})
        assert weak.status_code == 422 and "12 caractères" in weak.json()["detail"]["message"]
        accepted = http.post(
            "/api/v1/auth/invitation/accept", json={"token": token, "password": "Le-vent-se-leve-ce-matin"}
        )
        assert accepted.status_code == 200, accepted.text
        again = http.post(
            "/api/v1/auth/invitation/accept", json={"token": token, "password": "Le-vent-se-leve-ce-soir"}
        )
        assert again.status_code == 422 and "n'est plus valable" in again.json()["detail"]
        headers = system.login(http, email, "Le-vent-se-leve-ce-matin")
        assert http.get("/api/v1/me", headers=headers).json()["role"] == "sales"


def test_admin_user_form_and_invitation_form_on_the_web_pages(system):
    admin = _person(system, "admin")
    email = _email("web", "a6telecom.example")
    with system.client() as http:
        csrf = form_login(http, admin["email"], admin["password"])
        form = {
            "email": email,
            "name": "Wenceslas Web",
            "role": "agent",
            "language": "fr",
            "csrf_token": csrf,
        }
        forged = http.post("/admin/utilisateurs/nouveau", data=form | {"csrf_token": "forged"})
        assert forged.status_code == 400 and "expiré" in forged.text and "Wenceslas Web" in forged.text
        created = http.post("/admin/utilisateurs/nouveau", data=form)
        assert created.status_code == 200 and "Le compte est créé" in created.text, created.text
        user_url = str(created.url).split("?")[0].replace(system.base_url, "")
        refused = http.post(user_url, data=form | {"name": "  ", "phone": "01 02 03 04 05"})
        assert refused.status_code == 422 and "Le nom est obligatoire." in refused.text
        assert "01 02 03 04 05" in refused.text
        saved = http.post(user_url, data=form | {"name": "Wenceslas Renommé"})
        assert saved.status_code == 200 and "Les modifications sont enregistrées." in saved.text

    link = _link_from_mail(system, email, "invitation").replace(system.base_url, "")
    with system.client() as http:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get(link).text).group(1)
        password = "Le-vent-se-leve-ce-matin"
        different = http.post(link, data={"password": password, "confirm": "autre", "csrf_token": csrf})
        assert different.status_code == 422 and "différents" in different.text
        forged = http.post(link, data={"password": password, "confirm": password, "csrf_token": "forged"})
        assert forged.status_code == 400 and "expiré" in forged.text
        accepted = http.post(link, data={"password": password, "confirm": password, "csrf_token": csrf})
        assert accepted.status_code == 200 and str(accepted.url).endswith("/login?notice=welcome")
        system.login(http, email, password)


def _refused_after(http: httpx.Client, headers: dict, deadline: float = 5.0) -> float:
    """Seconds until ``headers`` stop working (polling), or fail after ``deadline``."""
    started = time.perf_counter()
    while time.perf_counter() - started < deadline:
        if http.get("/api/v1/me", headers=headers).status_code == 401:
            return time.perf_counter() - started
        time.sleep(0.01)
    raise AssertionError(f"token still accepted {deadline}s after the revocation")


def test_deactivated_user_is_locked_out_at_once(system, people):
    person = _person(system, "client")
    with system.client() as http:
        headers = system.login(http, person["email"], person["password"])
        web = system.client()
        login_page = web.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)
        web.post(
            "/login", data={"email": person["email"], "password": person["password"], "csrf_token": csrf}
        )
        assert web.get("/", follow_redirects=False).status_code == 200
        assert http.get("/api/v1/me", headers=headers).status_code == 200

        done = http.post(f"/api/v1/users/{person['id']}/deactivate", headers=people["admin"]["headers"])
        assert done.status_code == 200 and done.json()["active"] is False
        elapsed = _refused_after(http, headers)
        print(f"deactivated user's token refused {elapsed * 1000:.0f} ms after the deactivation answered")
        assert elapsed < 1.0
        assert web.get("/", follow_redirects=False).status_code == 303  # the web session too
        web.close()
        refused = http.post(
            "/api/v1/auth/login", json={"email": person["email"], "password": person["password"]}
        )
        assert (
            refused.status_code == 401
            and refused.json()["detail"] == "Adresse e-mail ou mot de passe incorrect."
        )

        http.post(f"/api/v1/users/{person['id']}/reactivate", headers=people["admin"]["headers"])
        assert http.get("/api/v1/me", headers=headers).status_code == 401  # old sessions stay dead
        fresh = system.login(http, person["email"], person["password"])
        assert http.get("/api/v1/me", headers=fresh).status_code == 200


def test_sign_out_everywhere_and_a_restarted_gateway_is_not_fooled(system):
    person = _person(system, "agent")
    with system.client() as http:
        first = system.login(http, person["email"], person["password"])
        second = system.login(http, person["email"], person["password"])
        assert http.post("/api/v1/auth/logout", headers=first).status_code == 204
        _refused_after(http, first)
        assert http.get("/api/v1/me", headers=second).status_code == 200
        assert http.post("/api/v1/auth/logout-everywhere", headers=second).json()["revoked"] == 1
        _refused_after(http, second)
        third = system.login(http, person["email"], person["password"])
    # A gateway that starts after the revocations loads them from auth: the old tokens stay refused there.
    base_url = system.start_extra_gateway()
    try:
        with httpx.Client(base_url=base_url, timeout=30) as other:
            assert other.get("/api/v1/me", headers=first).status_code == 401
            assert other.get("/api/v1/me", headers=second).status_code == 401
            assert other.get("/api/v1/me", headers=third).status_code == 200
    finally:
        system.stop_process("gateway-2")


def test_api_token_is_short_lived_and_renewable(system):
    person = _person(system, "sales")
    with system.client() as http:
        response = http.post(
            "/api/v1/auth/login", json={"email": person["email"], "password": person["password"]}
        )
        assert response.json()["expires_in"] <= 15 * 60
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        renewed = http.post("/api/v1/auth/refresh", headers=headers)
        assert (
            renewed.status_code == 200 and renewed.json()["access_token"] != response.json()["access_token"]
        )
        new_headers = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
        assert http.get("/api/v1/me", headers=new_headers).status_code == 200
        http.post("/api/v1/auth/logout", headers=new_headers)
        _refused_after(http, headers)  # same session: the older token dies with it
        assert http.post("/api/v1/auth/refresh", headers=headers).status_code == 401


def test_second_factor_by_email_over_the_api(system):
    person = _person(system, "client")
    with system.client() as http:
        headers = system.login(http, person["email"], person["password"])
        assert http.put("/api/v1/me/two-factor", json={"enabled": True}, headers=headers).status_code == 200
        seen = len(system.smtp.messages)
        started = http.post(
            "/api/v1/auth/login", json={"email": person["email"], "password": person["password"]}
        )
        body = started.json()
        assert body["second_factor_required"] is True and "access_token" not in body
        code = _code_from_mail(system, person["email"], after=seen)
        wrong = "000000" if code != "000000" else "111111"
        bad = http.post("/api/v1/auth/login/code", json={"challenge_id": body["challenge_id"], "code": wrong})
        assert bad.status_code == 401 and "Il vous reste 4 essais" in bad.json()["detail"]["message"]
        resend = http.post("/api/v1/auth/login/code/resend", json={"challenge_id": body["challenge_id"]})
        assert resend.status_code == 429 and "secondes" in resend.json()["detail"]["message"]
        ok = http.post("/api/v1/auth/login/code", json={"challenge_id": body["challenge_id"], "code": code})
        assert ok.status_code == 200, ok.text
        token_headers = {"Authorization": f"Bearer {ok.json()['access_token']}"}
        assert http.get("/api/v1/me", headers=token_headers).json()["id"] == person["id"]
        reused = http.post(
            "/api/v1/auth/login/code", json={"challenge_id": body["challenge_id"], "code": code}
        )
        assert reused.status_code == 401


def test_password_reset_by_mail_and_own_password_change(system):
    person = _person(system, "reseller")
    with system.client() as http:
        answer = http.post("/api/v1/auth/password/forgot", json={"email": person["email"]})
        link = _link_from_mail(system, person["email"], "mot-de-passe/reinitialiser")
        token = link.rsplit("/", 1)[1]
        reset = http.post(
            "/api/v1/auth/password/reset", json={"token": token, "password": "Nouvelle-phrase-secrete"}
        )
        assert answer.status_code == 200 and reset.status_code == 200, reset.text
        headers = system.login(http, person["email"], "Nouvelle-phrase-secrete")
        wrong = http.post(
            "/api/v1/me/password",
            json={"current_password": "pas-le-bon", "new_password": "Encore-une-phrase-secrete"},
            headers=headers,
        )
        assert (
            wrong.status_code == 422
            and wrong.json()["detail"]["message"] == "Le mot de passe actuel est incorrect."
        )
        changed = http.post(
            "/api/v1/me/password",
            json={"current_password": "Nouvelle-phrase-secrete", "new_password": "Encore-une-phrase-secrete"},
            headers=headers,
        )
        assert changed.status_code == 204
        assert http.get("/api/v1/me", headers=headers).status_code == 200  # this session stays open
        system.login(http, person["email"], "Encore-une-phrase-secrete")


def test_no_enumeration_through_login_reset_or_signup(system):
    person = _person(system, "client")
    unknown = _email("inconnu")
    with system.client() as http:
        address = _address()
        answers = []
        for email in (person["email"], unknown):
            login = http.post(
                "/api/v1/auth/login",
                json={"email": email, "password": "mauvais-mot-de-passe"},
                headers=address,
            )
            reset = http.post("/api/v1/auth/password/forgot", json={"email": email}, headers=address)
            signup = http.post(
                "/api/v1/auth/signup", json={"email": email, "name": "Quelqu'un"}, headers=address
            )
            answers.append([(r.status_code, r.json()) for r in (login, reset, signup)])
        assert answers[0] == answers[1]
        # Timing: an unknown address costs one hash verification like a wrong password (bench/login.py measures it).
        timings = {}
        for label, email in (("known", person["email"]), ("unknown", unknown)):
            started = time.perf_counter()
            for _ in range(3):
                http.post(
                    "/api/v1/auth/login", json={"email": email, "password": "x" * 12}, headers=_address()
                )
            timings[label] = (time.perf_counter() - started) / 3
        print(
            f"failed login: known {timings['known'] * 1000:.0f} ms, unknown {timings['unknown'] * 1000:.0f} ms"
        )


def test_brute_force_lock_says_when_to_try_again_and_admins_see_it(system, people):
    person = _person(system, "client")
    address = _address()
    with system.client() as http:
        statuses = [
            http.post(
                "/api/v1/auth/login", json={"email": person["email"], "password": "x" * 12}, headers=address
            )
            for _ in range(5)
        ]
        assert [r.status_code for r in statuses] == [401, 401, 401, 401, 429]
        assert (
            statuses[-1].json()["detail"]["message"]
            == "Trop de tentatives de connexion. Réessayez dans 1 minute."
        )
        right = http.post(
            "/api/v1/auth/login",
            json={"email": person["email"], "password": person["password"]},
            headers=_address(),
        )
        assert right.status_code == 429
        locks = http.get("/api/v1/security/locks", headers=people["admin"]["headers"]).json()
        lock = next(lock for lock in locks if lock["value"] == person["email"])
        assert lock["user_id"] == person["id"]
        assert (
            http.delete(
                f"/api/v1/security/locks/{lock['key']}", headers=people["admin"]["headers"]
            ).status_code
            == 204
        )
        system.login(http, person["email"], person["password"])


def test_sign_up_request_acknowledged_then_approved_with_an_invitation(system, people):
    email = _email("demande")
    with system.client() as http:
        form = http.get("/inscription")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        sent = http.post(
            "/inscription",
            data={
                "email": email,
                "name": "Denis Demandeur",
                "company": "Boulangerie Martin",
                "phone": "0600000000",
                "message": "Bonjour",
                "csrf_token": csrf,
            },
        )
        assert sent.status_code == 200 and "bien été enregistrée" in sent.text
        system.smtp.wait_for(
            lambda m: m["To"] == email and "demande de création de compte" in str(m["Subject"])
        )
        admin = people["admin"]["headers"]
        pending = http.get("/api/v1/signup-requests", headers=admin).json()
        request = next(r for r in pending if r["email"] == email)
        # The approval page suggests the customer of a known contact, or says plainly that it cannot (crm_sync down).
        login_page = http.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)
        http.post(
            "/login",
            data={
                "email": people["admin"]["email"],
                "password": people["admin"]["password"],
                "csrf_token": csrf,
            },
        )
        page = http.get(f"/admin/demandes/{request['id']}")
        assert page.status_code == 200 and "Denis Demandeur" in page.text
        assert (
            "Suggestion indisponible" in page.text
            or "aucun contact connu" in page.text
            or "société suggérée" in page.text
        )
        customer_id = str(uuid.uuid4())
        approved = http.post(
            f"/api/v1/signup-requests/{request['id']}/approve",
            json={"customer_id": customer_id},
            headers=admin,
        )
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        _link_from_mail(system, email, "invitation")
        user = http.get(f"/api/v1/users/{approved.json()['user_id']}", headers=admin).json()
        assert (user["role"], user["customer_id"], user["name"]) == ("client", customer_id, "Denis Demandeur")
        again = http.post(
            f"/api/v1/signup-requests/{request['id']}/approve",
            json={"customer_id": customer_id},
            headers=admin,
        )
        assert again.status_code == 409


def test_audit_log_records_address_and_browser_and_admin_pages_render(system, people):
    person = _person(system, "agent")
    address = _address()
    with system.client() as http:
        http.post(
            "/api/v1/auth/login",
            json={"email": person["email"], "password": person["password"]},
            headers=address | {"User-Agent": "Navigateur-de-test/1.0"},
        )
        log = http.get(f"/api/v1/audit?user_id={person['id']}", headers=people["admin"]["headers"]).json()
        entry = next(e for e in log["items"] if e["kind"] == "login.succeeded")
        assert entry["ip"] == address["X-Forwarded-For"] and entry["user_agent"] == "Navigateur-de-test/1.0"
        login_page = http.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)
        http.post(
            "/login",
            data={
                "email": people["admin"]["email"],
                "password": people["admin"]["password"],
                "csrf_token": csrf,
            },
        )
        for path, text in (
            ("/admin/utilisateurs?role=agent", person["email"]),
            (f"/admin/utilisateurs/{person['id']}", "Connexion réussie"),
            ("/admin/journal?kind=login", "Connexion réussie"),
            ("/admin/securite", "Double authentification par rôle"),
            ("/admin/demandes", "Demandes de création de compte"),
            ("/profil", "Mon profil"),
        ):
            page = http.get(path)
            assert page.status_code == 200 and text in page.text, path


def test_sign_out_security_and_forgotten_password_forms_refuse_a_forged_token(system):
    admin = _person(system, "admin")
    with system.client() as http:
        csrf = form_login(http, admin["email"], admin["password"])
        imposed = http.get("/admin/securite").text.count("Ne plus imposer")
        role = http.post("/admin/securite/roles/agent", data={"two_factor_required": "1", "csrf_token": "x"})
        assert (
            role.status_code == 400
            and "expiré" in role.text
            and "Double authentification par rôle" in role.text
        )
        unlock = http.post("/admin/securite/deverrouiller", data={"key": "ip:10.0.0.1", "csrf_token": "x"})
        assert unlock.status_code == 400 and "expiré" in unlock.text
        assert http.get("/admin/securite").text.count("Ne plus imposer") == imposed
        gone = http.post(
            "/admin/securite/deverrouiller",
            data={"key": "ip:10.0.0.1", "csrf_token": csrf},
            headers={"Accept": "text/html"},
        )
        assert gone.status_code == 404 and "Blocage introuvable." in gone.text

        # A forged sign-out (a cross-site form) ends nothing and leads back home.
        forged = http.post("/logout", data={"csrf_token": "x"})
        assert forged.url.path == "/" and http.get("/profil").status_code == 200
        everywhere = http.post("/logout/everywhere", data={"csrf_token": "x"})
        assert everywhere.status_code == 400 and "expiré" in everywhere.text
        assert http.get("/profil").status_code == 200
        signed_out = http.post("/logout", data={"csrf_token": csrf})
        assert signed_out.url.path == "/login" and "Vous êtes déconnecté." in signed_out.text
        assert http.get("/profil").url.path == "/login"

    with system.client() as http:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/mot-de-passe/oublie").text).group(1)
        forged = http.post("/mot-de-passe/oublie", data={"email": admin["email"], "csrf_token": "x"})
        assert forged.status_code == 400 and "expiré" in forged.text and admin["email"] in forged.text
        sent = http.post("/mot-de-passe/oublie", data={"email": admin["email"], "csrf_token": csrf})
        assert sent.status_code == 200 and "un e-mail contenant un lien" in sent.text
