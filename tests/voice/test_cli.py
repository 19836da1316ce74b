"""Seed 001's steps from the command line, on both backends: sites, mediation servers (HA) and their accounts,
a gateway with its trunks, the tenant's hybrid and federation configuration, users enabled and checked as the
seed's Get-CsOnlineUser script checks them, PSTN sites, and ``voice check`` (exit 1 on a failing line)."""

from __future__ import annotations

import json

from typer.testing import CliRunner, Result

from tenantry.app import Services
from tenantry.cli import app
from tenantry.cli_kit import Cli
from tests.conftest import administrator, user_payload


def run(backend: Services, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), obj=Cli(backend))
    assert result.exit_code == code, result.output
    return result


def _setup(backend: Services, tenant: str) -> None:
    backend.directory.add_domain(tenant, "contoso.example", verified=True)
    for user, display in (("bob", "Bob Kelly"), ("ann", "Ann Smith"), ("sam", "Sam Smith")):
        made = backend.scim.create(tenant, "User", user_payload(f"{user}@contoso.example", displayName=display))
        backend.directory.assign_licence(tenant, made["id"], "E5")


def test_the_seeds_steps_end_with_a_check_that_passes(backend: Services, tenant: str) -> None:
    _setup(backend, tenant)
    t = ("--tenant", tenant)
    run(backend, "voice", "site", "new", "Seattle", "--edge-fqdn", "ap.sea.contoso.example", *t)
    out = run(backend, "voice", "mediation-server", "new", "ms1.sea.contoso.example", "--site", "Seattle",
              "--ip", "10.0.1.11", *t).stdout
    assert "mediationserver-ms1@contoso.example" in out and "ap.sea.contoso.example" in out
    run(backend, "voice", "mediation-server", "new", "ms2.sea.contoso.example", "--site", "Seattle",
        "--account-name", "MediationServer2", *t)
    made = json.loads(run(backend, "voice", "gateway", "new", "gw1.sea.contoso.example", "--site", "Seattle",
                          "--json", *t).stdout)
    assert [(tr["target"], tr["priority"]) for tr in made["trunks"]] == [("ms1.sea.contoso.example", 0),
                                                                         ("ms2.sea.contoso.example", 0)]
    # Set-CsHybridMediationServer -Identity <DisplayName> -Fqdn -AccessProxyExternalFqdn
    run(backend, "voice", "mediation-server", "set", "MediationServer2", "--fqdn", "ms2.sea.contoso.example",
        "--access-proxy-fqdn", "ap.sea.contoso.example", *t)
    servers = json.loads(run(backend, "voice", "mediation-server", "list", "--json", *t).stdout)
    assert {s["account_name"] for s in servers} == {"MediationServer-ms1", "MediationServer2"}
    out = run(backend, "voice", "hybrid-config", "set", "--peer-destination", "ap.sea.contoso.example",
              "--no-use-on-prem-dial-plan", *t).stdout
    assert "PeerDestination   : ap.sea.contoso.example" in out and "UseOnPremDialPlan : False" in out
    assert "True" in run(backend, "voice", "federation", "set", "--shared-sip-address-space", *t).stdout
    # Set-CsUser -Identity "Bob Kelly" -EnterpriseVoiceEnabled $true -HostedVoiceMail $true -OnPremLineURI tel:+…
    run(backend, "voice", "user", "set", "Bob Kelly", "--enterprise-voice", "--hosted-voicemail",
        "--line-uri", "tel:+14255550100", "--voice-policy", "HybridVoice", *t)
    run(backend, "voice", "user", "grant-policy", "sip:bob@contoso.example", "InternationalCallsDisallowed", *t)
    run(backend, "voice", "user", "pstn-site", "set", "bob@contoso.example", "Seattle", *t)
    shown = run(backend, "voice", "user", "show", "Bob Kelly", *t).stdout
    for expected in ("EnterpriseVoiceEnabled : True", "HostedVoiceMail        : True",
                     "VoicePolicy            : HybridVoice", "OnPremLineURI          : tel:+14255550100",
                     "VoiceRoutingPolicy     : InternationalCallsDisallowed", "HybridPstnSite         : Seattle"):
        assert expected in shown, shown
    everyone = json.loads(run(backend, "voice", "user", "pstn-site", "show", "--json", *t).stdout)
    assert {u["sip_address"]: u["hybrid_pstn_site"] for u in everyone} == {
        "ann@contoso.example": None, "bob@contoso.example": "Seattle", "sam@contoso.example": None}
    out = run(backend, "voice", "check", *t).stdout
    assert "FAIL" not in out and "0 failed" in out and "trunk-priority" in out


def test_a_wildcard_shows_everyone_it_matches_and_changes_no_one(backend: Services, tenant: str) -> None:
    _setup(backend, tenant)
    t = ("--tenant", tenant)
    shown = run(backend, "voice", "user", "show", "*Smith", *t).stdout
    assert "ann@contoso.example" in shown and "sam@contoso.example" in shown and "bob" not in shown
    refused = run(backend, "voice", "user", "set", "*Smith", "--enterprise-voice", *t, code=1)
    assert "names 2 users" in refused.output and "ann@contoso.example" in refused.output
    assert "no user" in run(backend, "voice", "user", "show", "Nobody Here", *t, code=1).output


def test_a_pool_trunk_fails_the_check_with_its_fix_and_exit_1(backend: Services, tenant: str) -> None:
    _setup(backend, tenant)
    t = ("--tenant", tenant)
    run(backend, "voice", "site", "new", "Seattle", "--edge-fqdn", "ap.sea.contoso.example", *t)
    run(backend, "voice", "mediation-server", "new", "ms1.sea.contoso.example", "--site", "Seattle", *t)
    run(backend, "voice", "gateway", "new", "gw1.sea.contoso.example", "--site", "Seattle", "--trunk-to", "none", *t)
    run(backend, "voice", "trunk", "new", "gw1.sea.contoso.example", "pool.sea.contoso.example", *t)
    run(backend, "voice", "federation", "set", "--shared-sip-address-space", *t)
    out = run(backend, "voice", "check", *t, code=1).stdout
    assert "FAIL trunk-target" in out and "fix: tenantry voice trunk remove gw1.sea.contoso.example " \
        "pool.sea.contoso.example" in out
    checked = json.loads(run(backend, "voice", "check", "--json", *t, code=1).stdout)
    assert checked["ok"] is False
    run(backend, "voice", "trunk", "remove", "gw1.sea.contoso.example", "pool.sea.contoso.example", *t)
    run(backend, "voice", "trunk", "new", "gw1.sea.contoso.example", "ms1.sea.contoso.example", *t)
    assert "0 failed" in run(backend, "voice", "check", *t).stdout
    trunks = json.loads(run(backend, "voice", "trunk", "list", "--json", *t).stdout)
    assert [(tr["gateway"], tr["target"]) for tr in trunks] == [("gw1.sea.contoso.example", "ms1.sea.contoso.example")]


def test_a_bad_line_uri_is_refused_with_a_message(backend: Services, tenant: str) -> None:
    _setup(backend, tenant)
    result = run(backend, "voice", "user", "set", "bob@contoso.example", "--line-uri", "tel:+1425", "--tenant",
                 tenant, code=1)
    assert "tel:+<E.164>" in result.output


def test_a_command_run_as_a_voice_administrator_changes_and_is_recorded(backend: Services, tenant: str) -> None:
    _setup(backend, tenant)
    admin = administrator(backend, tenant, ["Voice Administrator"])
    who = backend.directory.users_by_id(tenant, [admin])[0].user_name
    run(backend, "--as", who, "voice", "site", "new", "Seattle", "--edge-fqdn", "ap.sea.contoso.example",
        "--tenant", tenant)
    assert [s.name for s in backend.voice.sites(tenant)] == ["Seattle"]
    entries = backend.ledger.entries(tenant, action="admin.change")
    assert any("voice site new" in str(e) for e in entries)
    other = administrator(backend, tenant, ["Compliance Administrator"])
    refused = run(backend, "--as", backend.directory.users_by_id(tenant, [other])[0].user_name, "voice", "site",
                  "new", "Berlin", "--edge-fqdn", "ap.ber.contoso.example", "--tenant", tenant, code=1)
    assert "Voice Administrator" in refused.output
