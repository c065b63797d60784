"""python-gitlab, unchanged, against Doorward's personal access token API.

Run by tests/it/python_clients.rs with:
    python3 python_gitlab_pats.py BASE_URL ADMIN_TOKEN ALICE_ID
where ADMIN_TOKEN is root's only token so far (named "test", scope api) and alice has three
active tokens, alice-0 to alice-2.
"""
import sys

import gitlab

base, token, alice_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
gl = gitlab.Gitlab(base, private_token=token)

me = gl.personal_access_tokens.get("self")
assert me.name == "test" and me.scopes == ["api"], me.attributes
assert me.active is True and me.revoked is False and me.user_id == 1, me.attributes
assert me.last_used_at.endswith(".000Z") and len(me.expires_at) == 10, me.attributes

# An administrator lists every token of the instance, or one user's.
everyone = gl.personal_access_tokens.list(get_all=True)
assert [t.user_id for t in everyone] == [1, 1, alice_id, alice_id, alice_id], [t.attributes for t in everyone]
alices = gl.personal_access_tokens.list(user_id=alice_id, get_all=True)
assert [t.name for t in alices] == ["alice-0", "alice-1", "alice-2"], [t.attributes for t in alices]
page = gl.personal_access_tokens.list(per_page=2, page=2)
assert [t.name for t in page] == ["alice-0", "alice-1"], [t.attributes for t in page]
lazy = gl.personal_access_tokens.list(iterator=True, per_page=2)
assert sum(1 for _ in lazy) == 5 and lazy.total == 5

one = gl.personal_access_tokens.get(alices[2].id)
assert one.name == "alice-2" and one.active is True and one.last_used_at is None, one.attributes

# Revoking: by id through the manager, and through an object from a list.
gl.personal_access_tokens.delete(alices[0].id)
revoked = gl.personal_access_tokens.get(alices[0].id)
assert revoked.revoked is True and revoked.active is False, revoked.attributes
alices[1].delete()
inactive = gl.personal_access_tokens.list(user_id=alice_id, state="inactive", get_all=True)
assert [t.name for t in inactive] == ["alice-0", "alice-1"], [t.attributes for t in inactive]
active = gl.personal_access_tokens.list(user_id=alice_id, revoked=False, get_all=True)
assert [t.name for t in active] == ["alice-2"], [t.attributes for t in active]
assert [t.name for t in gl.personal_access_tokens.list(search="ALICE-2")] == ["alice-2"]

try:
    gl.personal_access_tokens.get(999999)
    raise AssertionError("a missing token was found")
except gitlab.exceptions.GitlabGetError as e:
    assert e.response_code == 404 and e.error_message == "404 Not Found", e.error_message

# Last, the token revokes itself; from then on it authenticates nothing.
gl.personal_access_tokens.delete("self")
try:
    gl.auth()
    raise AssertionError("a revoked token authenticated")
except gitlab.exceptions.GitlabAuthenticationError as e:
    assert e.response_code == 401
print("python-gitlab personal access tokens: ok")
