"""python-gitlab, unchanged, against Doorward's applications API.

Run by tests/it/python_clients.rs with: python3 python_gitlab_applications.py BASE_URL ADMIN_TOKEN
"""
import sys

import gitlab

base, token = sys.argv[1], sys.argv[2]
gl = gitlab.Gitlab(base, private_token=token)

wiki = gl.applications.create(
    {"name": "Wiki", "redirect_uri": "https://wiki.example.com/oauth/callback", "scopes": "read_user openid"}
)
assert wiki.application_name == "Wiki", wiki.attributes
assert len(wiki.application_id) == 64, wiki.application_id
assert wiki.secret.startswith("dwoas-"), wiki.secret
assert wiki.callback_url == "https://wiki.example.com/oauth/callback"
assert wiki.confidential is True

cli = gl.applications.create(
    {"name": "CLI", "redirect_uri": "http://127.0.0.1/callback", "scopes": "api", "confidential": False}
)
assert cli.confidential is False and cli.secret != wiki.secret

apps = gl.applications.list(get_all=True)
assert [a.application_name for a in apps] == ["Wiki", "CLI"], [a.attributes for a in apps]
assert all("secret" not in a.attributes for a in apps), [a.attributes for a in apps]
assert [a.application_id for a in apps] == [wiki.application_id, cli.application_id]

try:
    gl.applications.create({"name": "Bad", "redirect_uri": "http://bad.example.com/cb", "scopes": "read_user"})
    raise AssertionError("a plain-http callback was accepted")
except gitlab.exceptions.GitlabCreateError as e:
    assert e.response_code == 400, e.response_code
    assert "redirect_uri" in str(e.error_message), e.error_message

gl.applications.delete(wiki.id)
assert [a.id for a in gl.applications.list(get_all=True)] == [cli.id]
cli.delete()
assert gl.applications.list(get_all=True) == []

try:
    gl.applications.delete(wiki.id)
    raise AssertionError("a deleted application was deleted again")
except gitlab.exceptions.GitlabDeleteError as e:
    assert e.response_code == 404 and e.error_message == "404 Application Not Found", e.error_message
print("python-gitlab applications: ok")
