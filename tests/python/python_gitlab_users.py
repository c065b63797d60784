"""python-gitlab, unchanged, against Doorward's users API.

Run by tests/it/python_clients.rs with: python3 python_gitlab_users.py BASE_URL ADMIN_TOKEN
"""
import sys

import gitlab

base, token = sys.argv[1], sys.argv[2]
gl = gitlab.Gitlab(base, private_token=token)
gl.auth()
assert gl.user.username == "root", gl.user.username
assert gl.user.is_admin is True

bob = gl.users.create(
    {"username": "bob", "email": "bob@example.com", "name": "Bob", "password": "correct-horse", "skip_confirmation": True}
)
assert bob.username == "bob" and bob.state == "active"
for i in range(24):
    gl.users.create({"username": f"user{i:02}", "email": f"user{i}@example.com", "name": f"User {i}", "password": "correct-horse"})

everyone = gl.users.list(get_all=True)
assert len(everyone) == 26, len(everyone)
page = gl.users.list(per_page=10, page=2)
assert [u.username for u in page] == [f"user{i:02}" for i in range(8, 18)], [u.username for u in page]
lazy = gl.users.list(iterator=True, per_page=7)
assert sum(1 for _ in lazy) == 26 and lazy.total == 26

bob.block()
assert bob.state == "blocked" and gl.users.get(bob.id).state == "blocked"
bob.unblock()
assert bob.state == "active" and gl.users.get(bob.id).state == "active"

assert [u.username for u in gl.users.list(username="BOB")] == ["bob"]
# python-gitlab sends Python booleans as True/False.
bob.block()
assert [u.username for u in gl.users.list(blocked=True)] == ["bob"]
assert len(gl.users.list(active=True, get_all=True)) == 25
bob.unblock()
# user10..user19 by username, user01 by email (user1@example.com): admins search emails too.
assert len(gl.users.list(search="user1", get_all=True)) == 11

try:
    gl.users.create({"username": "bob", "email": "bob2@example.com", "name": "Bob", "password": "correct-horse"})
    raise AssertionError("a duplicate username was accepted")
except gitlab.exceptions.GitlabCreateError as e:
    assert e.response_code == 409 and e.error_message == "Username has already been taken", e.error_message
try:
    gl.users.get(9999)
    raise AssertionError("a missing user was found")
except gitlab.exceptions.GitlabGetError as e:
    assert e.response_code == 404 and e.error_message == "404 User Not Found", e.error_message

anonymous = gitlab.Gitlab(base, private_token="dwpat-wrong")
try:
    anonymous.auth()
    raise AssertionError("a bad token authenticated")
except gitlab.exceptions.GitlabAuthenticationError as e:
    assert e.response_code == 401
print("python-gitlab: ok")
