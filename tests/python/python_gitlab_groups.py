"""python-gitlab, unchanged, against Doorward's groups and members API.

Run by tests/it/python_clients.rs with:
python3 python_gitlab_groups.py BASE_URL ADMIN_TOKEN MEMBER_USER_ID
"""
import sys

import gitlab
from gitlab.const import AccessLevel

base, token, member_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
gl = gitlab.Gitlab(base, private_token=token)

acme = gl.groups.create({"name": "Acme", "path": "acme"})
assert acme.full_path == "acme" and acme.visibility == "private", acme.attributes
infra = gl.groups.create({"name": "Infra", "path": "infra", "parent_id": acme.id, "description": "Servers"})
assert infra.full_path == "acme/infra" and infra.parent_id == acme.id, infra.attributes

# Groups by id and by full path.
assert gl.groups.get(infra.id).name == "Infra"
assert gl.groups.get("acme/infra").id == infra.id

# Subgroups and descendants.
assert [g.full_path for g in acme.subgroups.list(get_all=True)] == ["acme/infra"]
oncall = gl.groups.create({"name": "On call", "path": "oncall", "parent_id": infra.id})
assert sorted(g.full_path for g in acme.descendant_groups.list(get_all=True)) == ["acme/infra", "acme/infra/oncall"]

# Members: add, list, change, inherited list, remove.
m = acme.members.create({"user_id": member_id, "access_level": AccessLevel.DEVELOPER})
assert m.access_level == 30, m.attributes
assert sorted(x.id for x in acme.members.list(get_all=True)) == sorted([1, member_id])
m.access_level = AccessLevel.MAINTAINER
m.expires_at = "2999-01-31"
m.save()
again = acme.members.get(member_id)
assert again.access_level == 40 and again.expires_at == "2999-01-31", again.attributes
inherited = {x.id: x.access_level for x in oncall.members_all.list(get_all=True)}
assert inherited == {1: 50, member_id: 40}, inherited
try:
    acme.members.create({"user_id": member_id, "access_level": AccessLevel.GUEST})
    raise AssertionError("a duplicate member was accepted")
except gitlab.exceptions.GitlabCreateError as e:
    assert e.response_code == 409, e.response_code

# Lists with GitLab's filters, python-gitlab's booleans included.
owned = [g.full_path for g in gl.groups.list(owned=True, get_all=True)]
assert sorted(owned) == ["acme", "acme/infra", "acme/infra/oncall"], owned
top = [g.full_path for g in gl.groups.list(top_level_only=True, get_all=True)]
assert top == ["acme"], top
found = [g.full_path for g in gl.groups.list(search="call", get_all=True)]
assert found == ["acme/infra/oncall"], found

# Edit, move and delete.
infra.description = "Servers and networks"
infra.save()
assert gl.groups.get(infra.id).description == "Servers and networks"
infra.transfer()  # to the top level
assert gl.groups.get(oncall.id).full_path == "infra/oncall"
acme.members.delete(member_id)
assert [x.id for x in acme.members.list(get_all=True)] == [1]
gl.groups.delete(infra.id)
gl.groups.delete(acme.id)
assert gl.groups.list(get_all=True) == []
print("ok")
