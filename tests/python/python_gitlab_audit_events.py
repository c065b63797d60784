"""python-gitlab, unchanged, against Doorward's audit events API.

Run by tests/it/audit_events_api.rs with:
python3 python_gitlab_audit_events.py BASE_URL ADMIN_TOKEN BLOCKED_USER_ID
"""
import sys

import gitlab

base, token, blocked_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
gl = gitlab.Gitlab(base, private_token=token)
gl.auth()

events = gl.audit_events.list(get_all=True)
assert events, "no events"
ids = [e.id for e in events]
assert ids == sorted(ids, reverse=True), ids
blocked = [e for e in events if e.details["action"] == "user_blocked" and e.entity_id == blocked_id]
assert len(blocked) == 1, [e.details for e in events]
event = blocked[0]
assert event.entity_type == "User" and event.author_id == 1, event.attributes
assert event.details["author_name"] == "root", event.details

one = gl.audit_events.get(event.id)
assert one.attributes == event.attributes, (one.attributes, event.attributes)

filtered = gl.audit_events.list(entity_type="User", entity_id=blocked_id, get_all=True)
assert {e.entity_id for e in filtered} == {blocked_id}, [e.attributes for e in filtered]
paged = gl.audit_events.list(per_page=1, page=1)
assert len(paged) == 1 and paged[0].id == ids[0]
lazy = gl.audit_events.list(iterator=True, per_page=1)
assert sum(1 for _ in lazy) == len(ids) and lazy.total == len(ids)
assert gl.audit_events.list(created_after="2999-01-01T00:00:00Z") == []

try:
    gl.audit_events.get(999999)
    raise AssertionError("a missing event was found")
except gitlab.exceptions.GitlabGetError as e:
    assert e.response_code == 404, e.response_code

# python-gitlab's own moderation calls reach the same endpoints.
user = gl.users.get(blocked_id)
try:
    user.approve()
    raise AssertionError("a blocked user was approved")
except gitlab.exceptions.GitlabUserApproveError as e:
    assert e.response_code == 403, e.response_code
print("python-gitlab audit events: ok")
