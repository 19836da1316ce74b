"""What the SCIM request log keeps of a request (protocols.scim.summary): bounded, and never a value."""

from __future__ import annotations

from tenantry.protocols.scim.summary import MAX_OUTLINE, names, patch_outline, resource_outline

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_an_outline_too_long_for_the_column_counts_what_it_leaves_out() -> None:
    ops = [{"op": "replace", "path": f"urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User:label{i % 5 + 1}",
            "value": "x"} for i in range(200)]
    outline = patch_outline({"schemas": [PATCH_OP], "Operations": ops})
    assert outline is not None and len(outline) <= MAX_OUTLINE
    assert outline.startswith("replace grouptalk:label1, replace grouptalk:label2")
    shown = outline.count("replace ")
    assert outline.endswith(f", … (+{200 - shown} more)")


def test_a_path_less_operation_lists_attribute_names_only() -> None:
    outline = patch_outline({"Operations": [{"op": "Add", "value": {
        "emails": [{"value": "a@b.example"}, {"value": "c@d.example"}], "password": "s3cret-value",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}}}]})
    assert outline == "add (emails(2), password, enterprise:manager)"


def test_what_is_not_a_patch_or_not_a_resource_has_no_outline_and_no_names() -> None:
    assert patch_outline(["not", "a", "patch"]) is None
    assert patch_outline({"Operations": "replace"}) is None
    assert patch_outline({"Operations": [42, {"op": "remove", "path": "members"}]}) == "?, remove members"
    assert resource_outline({"displayName": "G", "members": [{"value": "1"}, {"value": "2"}]}) == "members(2)"
    assert resource_outline({"userName": "u"}) is None
    assert names({"userName": 7, "externalId": "e", "displayName": None}) == ("e", None, None)
    assert names("text") == (None, None, None)
