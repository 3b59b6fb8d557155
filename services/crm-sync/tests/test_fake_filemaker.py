"""The fake FileMaker Data API answers python-fmrest as the documented server does (over real HTTPS)."""

from __future__ import annotations

import fmrest
import pytest
import requests
from fmrest.exceptions import BadGatewayError, BadJSON, FileMakerError


def _server(fake, **kw):
    return fmrest.Server(
        fake.url,
        user=fake.user,
        password=kw.pop("password", fake.password),
        database=fake.database,
        layout=kw.pop("layout", "Clients"),
        api_version="vLatest",
        verify_ssl=fake.ca_path,
        **kw,
    )


def _seed(fake):
    ids = []
    for i, (name, city) in enumerate(
        [
            ("Boulangerie Dupont", "Lyon"),
            ("Garage du Centre", "Villeurbanne"),
            ("Dupontel SA", "Lyon"),
            ("Zèbre", ""),
        ]
    ):
        ids.append(fake.create("Clients", {"ID_Client": f"C{i:03}", "RaisonSociale": name, "Ville": city}))
        fake.clock_control.advance(10)
    return ids


def test_sessions_envelope_and_paging(fake_filemaker):
    _seed(fake_filemaker)
    raw = requests.post(
        f"{fake_filemaker.url}/fmi/data/vLatest/databases/A6Telecom/sessions",
        auth=(fake_filemaker.user, fake_filemaker.password),
        json={},
        verify=fake_filemaker.ca_path,
    )
    assert raw.status_code == 200
    assert raw.json()["messages"] == [{"code": "0", "message": "OK"}]
    assert raw.headers["X-FM-Data-Access-Token"] == raw.json()["response"]["token"]
    bad = requests.get(
        f"{fake_filemaker.url}/fmi/data/vLatest/databases/A6Telecom/layouts/Clients/records",
        headers={"Authorization": "Bearer nope"},
        verify=fake_filemaker.ca_path,
    )
    assert bad.status_code == 401 and bad.json() == {
        "response": {},
        "messages": [{"code": "952", "message": "Invalid FileMaker Data API token (*)"}],
    }

    server = _server(fake_filemaker)
    server.login()
    page = server.get_records(offset=2, limit=2, sort=[{"fieldName": "ID_Client", "sortOrder": "descend"}])
    assert [r.ID_Client for r in page] == ["C002", "C001"]
    assert page.info["foundCount"] == 4 and page.info["returnedCount"] == 2
    record = server.get_record(1)
    assert record.record_id == 1 and record.modification_id == 0
    assert server.logout()
    with pytest.raises(FileMakerError):
        _server(fake_filemaker, password="wrong").login()
    assert _server(fake_filemaker, password="wrong").last_error in (None, 212)


def test_find_operators(fake_filemaker):
    _seed(fake_filemaker)
    server = _server(fake_filemaker)
    server.login()

    def names(query, **kw):
        try:
            return sorted(r.RaisonSociale for r in server.find(query, **kw))
        except FileMakerError:
            assert server.last_error == 401
            return []

    assert names([{"RaisonSociale": "dupont"}]) == ["Boulangerie Dupont", "Dupontel SA"]
    assert names([{"RaisonSociale": "=dupont"}]) == ["Boulangerie Dupont"]
    assert names([{"RaisonSociale": "==dupontel sa"}]) == ["Dupontel SA"]
    assert names([{"RaisonSociale": "gar*"}]) == ["Garage du Centre"]
    assert names([{"Ville": "="}]) == ["Zèbre"]
    assert names([{"Ville": "*"}, {"RaisonSociale": "Lyon", "omit": "true"}]) == [
        "Boulangerie Dupont",
        "Dupontel SA",
        "Garage du Centre",
    ]
    assert names([{"Ville": "lyon"}, {"RaisonSociale": "boulangerie", "omit": "true"}]) == ["Dupontel SA"]
    assert names([{"Ville": "lyon", "RaisonSociale": "sa"}]) == ["Dupontel SA"]
    assert names([{"DateModification": ">=11/28/2026 08:00:20"}]) == ["Dupontel SA", "Zèbre"]
    assert names([{"DateModification": ">11/28/2026 08:00:20"}]) == ["Zèbre"]
    assert names([{"DateModification": "<11/28/2026 08:00:10"}]) == ["Boulangerie Dupont"]
    assert names([{"DateModification": "<=11/28/2026 08:00:10"}]) == [
        "Boulangerie Dupont",
        "Garage du Centre",
    ]
    assert names([{"DateModification": "11/28/2026 08:00:05...11/28/2026 08:00:25"}]) == [
        "Dupontel SA",
        "Garage du Centre",
    ]
    assert names([{"RaisonSociale": "nobody"}]) == []
    with pytest.raises(FileMakerError):
        server.find([{"NoSuchField": "x"}])
    assert server.last_error == 102
    sorted_desc = server.find(
        [{"Ville": "*"}], sort=[{"fieldName": "DateModification", "sortOrder": "descend"}], limit=2
    )
    assert [r.ID_Client for r in sorted_desc] == ["C002", "C001"]


def test_edits_mod_ids_and_errors(fake_filemaker):
    ids = _seed(fake_filemaker)
    server = _server(fake_filemaker)
    server.login()
    assert server.edit_record(ids[0], {"Ville": "Bron"})
    assert server.edit_record(ids[0], {"Ville": "Bron"}, mod_id=1)
    assert server.get_record(ids[0]).modification_id == 2
    with pytest.raises(FileMakerError):
        server.edit_record(ids[0], {"Ville": "Caluire"}, mod_id=1)
    assert server.last_error == 306
    new_id = server.create_record({"ID_Client": "C999", "RaisonSociale": "Nouveau"})
    assert int(new_id) == 5
    assert server.delete_record(new_id)
    with pytest.raises(FileMakerError):
        server.get_record(new_id)
    assert server.last_error == 101
    with pytest.raises(FileMakerError):
        server.get_records(layout=None, request_layout="Inconnu")
    assert server.last_error == 105
    fake_filemaker.add_layout("Vide", ["A"])
    with pytest.raises(FileMakerError):
        server.get_records(request_layout="Vide")
    assert server.last_error == 101


def test_expiry_relogin_and_faults(fake_filemaker):
    _seed(fake_filemaker)
    server = _server(fake_filemaker, auto_relogin=True)
    server.login()
    fake_filemaker.expire_sessions()
    assert len(list(server.get_records())) == 4  # 952, re-login, retried
    assert fake_filemaker.logins == 2
    fake_filemaker.inject("502")
    with pytest.raises(BadGatewayError):
        server.get_records()
    fake_filemaker.inject("garbage")
    with pytest.raises(BadJSON):
        server.get_records()
    fake_filemaker.inject("953")
    with pytest.raises(FileMakerError):
        server.get_records()
    assert server.last_error == 953
    fake_filemaker.inject("slow", seconds=0.5)
    slow = _server(fake_filemaker, timeout=0.2)
    slow.login()
    with pytest.raises(Exception, match="(?i)timed out|timeout"):
        slow.get_records()
    assert len(list(server.get_records())) == 4
