"""MCP authorization against Doorward, end to end, with the official MCP Python SDK.

    DOORWARD_URL=http://127.0.0.1:PORT DOORWARD_USERNAME=... DOORWARD_PASSWORD=... \
    DOORWARD_INTROSPECT_CLIENT_ID=... DOORWARD_INTROSPECT_CLIENT_SECRET=... python mcp_flow.py

An MCP server (streamable HTTP, in a thread) is a resource server whose authorization
server is Doorward and which checks tokens by RFC 7662 introspection. The SDK's
OAuthClientProvider then does what an MCP host does: RFC 9728 + RFC 8414 discovery,
RFC 7591 registration, authorization code + PKCE + RFC 8707 `resource`; its "browser" is
httpx2 driving Doorward's sign-in and consent pages. Prints one JSON line; exit 0 on success.
Optional: MCP_CLIENT_AUTH_METHOD (`none`, the default as MCP hosts use; `omit` to send none).
"""
import asyncio
import json
import os
import socket
import sys
import threading
import time
from html.parser import HTMLParser
from importlib.metadata import version
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2  # the SDK's own HTTP client (a dependency of mcp 2.x)
import uvicorn
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

# The PRM's scopes_supported (= required_scopes) is what the SDK asks for. Without it the SDK
# would request every scope in Doorward's scopes_supported, admin ones included.
SCOPE = "read_user"
# Nothing listens here: the code is read from the Location header before any browser would go.
REDIRECT_URI = "http://127.0.0.1:53682/callback"


class Fail(Exception):
    pass


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise Fail(f"environment variable {name} is required")
    return value


class IntrospectionVerifier:
    """TokenVerifier: a token is good if Doorward says it is active and its `aud` names us."""

    def __init__(self, endpoint: str, client_id: str, secret: str, resource: str):
        self.endpoint, self.auth, self.resource = endpoint, (client_id, secret), resource
        self.rejections: list[str] = []  # why tokens were refused, for the failure message

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx2.AsyncClient(timeout=10) as http:
            r = await http.post(self.endpoint, data={"token": token}, auth=self.auth)
        if r.status_code != 200:
            self.rejections.append(f"introspection HTTP {r.status_code}: {r.text[:200]}")
            return None
        data = r.json()
        if data.get("active") is not True:
            self.rejections.append(f"introspection says inactive: {data}")
            return None
        aud = data.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        # RFC 8707: the token must have been issued for this very resource, not just any.
        if self.resource not in audiences:
            self.rejections.append(f"aud {aud!r} does not contain {self.resource}")
            return None
        sub = data.get("sub")
        return AccessToken(
            token=token,
            client_id=str(data.get("client_id") or ""),
            scopes=str(data.get("scope") or "").split(),
            expires_at=data.get("exp"),
            resource=self.resource,
            subject=None if sub is None else str(sub),
            claims=data,
        )


def start_mcp_server(issuer: str, verifier_args: tuple[str, str, str]):
    """An MCPServer on a free loopback port, in a thread. Returns (uvicorn server, url, verifier)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound now so the port cannot be taken before uvicorn starts
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    verifier = IntrospectionVerifier(*verifier_args, resource=url)
    mcp = MCPServer(
        "doorward-mcp-flow",
        token_verifier=verifier,
        auth=AuthSettings(
            issuer_url=issuer,  # published in the PRM's authorization_servers
            resource_server_url=url,  # the PRM's `resource`, and the `resource` the client asks for
            required_scopes=[SCOPE],
            validate_token_resource=True,  # the SDK re-checks AccessToken.resource == url
        ),
    )

    @mcp.tool()
    def whoami() -> dict[str, str | None]:  # typed, so the result is also structured content
        """Who the bearer token belongs to, as Doorward's introspection told us."""
        token = get_access_token()
        assert token is not None  # the SDK's auth middleware only lets verified tokens through
        return {"sub": token.subject, "username": (token.claims or {}).get("username"),
                "client_id": token.client_id}

    app = mcp.streamable_http_app(streamable_http_path="/mcp")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise Fail("MCP server did not start")
        time.sleep(0.05)
    return server, url, verifier


class Forms(HTMLParser):
    """Every form on a page: action -> {field: value} of its inputs (hidden ones included)."""

    def __init__(self, html: str):
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._current: dict[str, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._current = self.forms.setdefault(a.get("action") or "", {})
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current[a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


async def sign_in_and_consent(authorize_url: str, username: str, password: str) -> str:
    """Plays the user's browser: follows Doorward's redirects, fills sign-in, presses Authorize.
    Returns the Location that sends the browser back to REDIRECT_URI."""
    async with httpx2.AsyncClient(timeout=30, follow_redirects=False) as browser:  # keeps cookies
        response = await browser.get(authorize_url)
        for _ in range(10):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(REDIRECT_URI):
                    return location
                response = await browser.get(location)
                continue
            if response.status_code != 200:
                raise Fail(f"{response.request.url} answered {response.status_code}: {response.text[:300]}")
            forms = Forms(response.text).forms
            base = str(response.url)
            if "/users/sign_in" in forms:
                # The CSRF token (authenticity_token) and return_to come from the page itself.
                fields = {**forms["/users/sign_in"], "username": username, "password": password}
                response = await browser.post(urljoin(base, "/users/sign_in"), data=fields)
            elif "/oauth/authorize" in forms:
                # Post back every hidden field as shown: the consent binding covers them all.
                fields = {**forms["/oauth/authorize"], "decision": "authorize"}
                response = await browser.post(urljoin(base, "/oauth/authorize"), data=fields)
            elif "/users/two_factor" in forms:
                raise Fail("the test user has two-factor authentication; use one without it")
            else:
                raise Fail(f"unexpected page at {response.url}: forms {list(forms)}")
        raise Fail("too many steps between the authorize URL and the redirect back")


class MemoryStorage:
    """TokenStorage kept in memory: every run registers afresh."""

    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self): return self.tokens
    async def set_tokens(self, tokens): self.tokens = tokens
    async def get_client_info(self): return self.client_info
    async def set_client_info(self, info): self.client_info = info


async def run() -> dict:
    base = env("DOORWARD_URL").rstrip("/")
    username, password = env("DOORWARD_USERNAME"), env("DOORWARD_PASSWORD")
    introspect = (f"{base}/oauth/introspect", env("DOORWARD_INTROSPECT_CLIENT_ID"),
                  env("DOORWARD_INTROSPECT_CLIENT_SECRET"))
    async with httpx2.AsyncClient(timeout=10) as http:
        try:
            meta = (await http.get(f"{base}/.well-known/oauth-authorization-server")).json()
        except (httpx2.HTTPError, ValueError) as e:
            raise Fail(f"cannot read {base}/.well-known/oauth-authorization-server: {e!r}")
    # The SDK compares the metadata's issuer with the PRM's authorization server as strings,
    # so the PRM must carry the issuer exactly as Doorward spells it.
    issuer = meta.get("issuer", "")
    # Without it the SDK would POST the registration to the MCP server's own origin (/register).
    if "registration_endpoint" not in meta:
        raise Fail("Doorward's metadata has no registration_endpoint")

    server, mcp_url, verifier = start_mcp_server(issuer, introspect)
    redirect: dict[str, str] = {}

    async def redirect_handler(authorize_url: str) -> None:
        redirect["authorize_url"] = authorize_url
        redirect["location"] = await sign_in_and_consent(authorize_url, username, password)

    async def callback_handler() -> AuthorizationCodeResult:
        query = {k: v[0] for k, v in parse_qs(urlsplit(redirect["location"]).query).items()}
        if "code" not in query:
            raise Fail(f"authorization refused: {query}")
        # `iss` too: Doorward advertises RFC 9207, so the SDK rejects a response without it.
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    method = os.environ.get("MCP_CLIENT_AUTH_METHOD", "none")
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=mcp_url,  # the resource is the MCP endpoint itself, path included
        client_metadata=OAuthClientMetadata(
            client_name="Doorward MCP flow test",
            redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method=None if method == "omit" else method,
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    try:
        async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
            async with Client(streamable_http_client(mcp_url, http_client=http)) as client:
                tools = [t.name for t in (await client.list_tools()).tools]
                result = await client.call_tool("whoami", {})
    except Exception as e:
        raise Fail(f"MCP client failed: {describe(e)}; resource server rejections: {verifier.rejections}")
    finally:
        server.should_exit = True
    whoami = result.structured_content
    if "whoami" not in tools or result.is_error or not (whoami or {}).get("sub"):
        raise Fail(f"unexpected MCP answers: tools={tools} result={result}")
    authorize_query = parse_qs(urlsplit(redirect.get("authorize_url", "")).query)
    if authorize_query.get("resource") != [mcp_url]:
        raise Fail(f"the SDK did not ask for resource={mcp_url}: {authorize_query}")

    # The token is for the MCP server only: Doorward's own API must refuse it (RFC 8707).
    assert storage.tokens is not None and storage.client_info is not None
    async with httpx2.AsyncClient(timeout=10) as http:
        api = await http.get(f"{base}/api/v4/user",
                             headers={"Authorization": f"Bearer {storage.tokens.access_token}"})
    challenge = api.headers.get("www-authenticate", "")
    if api.status_code != 401:
        raise Fail(f"/api/v4/user accepted a token bound to {mcp_url}: HTTP {api.status_code} {api.text[:200]}")
    if "/.well-known/oauth-protected-resource/api/v4" not in challenge:
        raise Fail(f"/api/v4/user 401 lacks resource_metadata: WWW-Authenticate: {challenge!r}")

    return {
        "ok": True, "mcp_sdk": version("mcp"), "issuer": issuer, "mcp_url": mcp_url,
        "client_id": storage.client_info.client_id,
        "token_endpoint_auth_method": storage.client_info.token_endpoint_auth_method,
        "scope": storage.tokens.scope, "tools": tools,
        "whoami": whoami, "api_v4_user": api.status_code,
    }


def describe(e: BaseException) -> str:
    """The leaf errors of an exception group (anyio task groups wrap what went wrong)."""
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in e.exceptions)
    return f"{type(e).__name__}: {e}"


def main() -> int:
    try:
        summary = asyncio.run(asyncio.wait_for(run(), timeout=120))
    except Exception as e:  # every failure, foreseen or not, ends as one clear line and exit 1
        error = str(e) if isinstance(e, Fail) else "timed out after 120 s" if isinstance(e, TimeoutError) else describe(e)
        print(json.dumps({"ok": False, "error": error}))
        print(f"FAIL: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
