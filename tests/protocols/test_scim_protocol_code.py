"""Pure SCIM code: RFC 7643 sample payloads round-trip, IdP normalisation, error translation."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from scim2_models import Context, InvalidSyntaxException

from tenantry.protocols.scim.errors import validation_error_to_scim
from tenantry.protocols.scim.normalize import PATCH_OP, normalize_patch, normalize_resource
from tenantry.protocols.scim.resources import POLICY, TenantryGroup, TenantryUser
from tests.conftest import SAMPLES

RFC = SAMPLES / "rfc7643"


@pytest.mark.parametrize("name", ["8.2-full-user.json", "8.3-enterprise-user.json", "8.4-group.json"])
def test_rfc7643_sample_round_trips(name: str) -> None:
    payload = json.loads((RFC / name).read_text())
    model = TenantryGroup if "group" in name else TenantryUser
    parsed = model.model_validate(payload)
    dumped = parsed.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    # password is returned "never" (RFC 7643 §4.1.1), so the full sample comes back without it.
    payload.pop("password", None)
    assert dumped == payload


def test_unknown_schema_uri_without_attributes_is_dropped_but_with_attributes_kept() -> None:
    adscim = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
    out = normalize_resource({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", adscim],
                              "displayName": "G"})
    assert out["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Group"]
    carrying = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:x:ext"],
                "userName": "u", "urn:x:ext": {"a": 1}}
    assert normalize_resource(carrying)["schemas"] == carrying["schemas"]
    with pytest.raises(ValidationError) as exc:
        TenantryUser.model_validate(normalize_resource(carrying), scim_ctx=Context.RESOURCE_CREATION_REQUEST,
                                    scim_policy=POLICY)
    assert isinstance(validation_error_to_scim(exc.value), InvalidSyntaxException)


@pytest.mark.parametrize("value", [[{"$ref": None, "value": "m1"}], "m1", {"value": "m1", "$ref": None}])
def test_entra_manager_shapes_become_one_object(value: object) -> None:
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    out = normalize_patch({"schemas": [PATCH_OP],
                           "Operations": [{"op": "Add", "path": f"{ext}:manager", "value": value}]})
    assert out["Operations"][0]["value"] == {"value": "m1"}
    out = normalize_resource({"userName": "u", ext: {"manager": value}})
    assert out[ext]["manager"] == {"value": "m1"}


@pytest.mark.parametrize("body", [None, [], {"schemas": [PATCH_OP], "Operations": "x"},
                                  {"schemas": [PATCH_OP], "Operations": []}, {"schemas": [PATCH_OP], "Operations": [1]},
                                  {"Operations": [{"op": "add", "path": "nickName", "value": "x"}]}])
def test_patch_without_a_list_of_operation_objects_is_invalid_syntax(body: object) -> None:
    with pytest.raises(InvalidSyntaxException):
        normalize_patch(body)
