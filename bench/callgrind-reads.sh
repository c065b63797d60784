#!/bin/bash
# Instructions per request of W4 (GET /api/v4/user), W5 (POST /oauth/introspect), W1
# (client credentials at POST /oauth/token) and W2 (refresh rotation) on SQLite, counted by callgrind: independent of whatever else the machine is doing, so two
# binaries can be compared on a noisy machine (docs/performance.md). Needs valgrind, curl
# and Python's `requests`.
#
# usage: bench/callgrind-reads.sh <doorward binary> <name> <free port>
# prints /tmp/<name>.cg.1 (W4), .cg.2 (W5), .cg.3 (W1) and .cg.4 (W2, refresh rotation)
# with their totals; divide by 2000.
# W1's count is the request's own work: the writer thread's share of a group commit is in
# it, the kernel's writes are not.
set -e
BIN=$1; OUT=$2; PORT=$3
D=$(mktemp -d /tmp/cg-XXXX)
export DOORWARD_DATA_DIR=$D DOORWARD_SECRET_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef DOORWARD_ROOT_PASSWORD=CallgrindRoot-123 DOORWARD_LISTEN=127.0.0.1:$PORT DOORWARD_LOG_LEVEL=warn
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/$OUT.cg $BIN serve > $D/log 2>&1 &
VPID=$!
for i in $(seq 1 120); do curl -sf http://127.0.0.1:$PORT/-/readiness >/dev/null && break; sleep 1; done
PAT=$($BIN token create --user root --scopes api 2>/dev/null | tail -1)
python3 - "$PORT" "$PAT" "$VPID" <<'PY'
import sys, requests, subprocess
port, pat, vpid = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
s = requests.Session()
app = s.post(f"{base}/api/v4/applications", headers={"PRIVATE-TOKEN": pat}, json={"name": "cg", "redirect_uri": "https://cg.example/cb", "scopes": "api read_user", "trusted": True}).json()
tok = s.post(f"{base}/oauth/token", auth=(app["application_id"], app["secret"]), data={"grant_type": "password", "username": "root", "password": "CallgrindRoot-123", "scope": "api read_user"}).json()["access_token"]
h = {"Authorization": f"Bearer {tok}"}
for _ in range(300):
    assert s.get(f"{base}/api/v4/user", headers=h).status_code == 200
    assert s.post(f"{base}/oauth/introspect", auth=(app["application_id"], app["secret"]), data={"token": tok}).status_code == 200
def run(label, f):
    subprocess.run(["callgrind_control", "-z", vpid], capture_output=True)
    subprocess.run(["callgrind_control", "-i", "on", vpid], capture_output=True)
    for _ in range(2000):
        f()
    subprocess.run(["callgrind_control", "-i", "off", vpid], capture_output=True)
    subprocess.run(["callgrind_control", "-d", label, vpid], capture_output=True)
run("W4", lambda: s.get(f"{base}/api/v4/user", headers=h))
run("W5", lambda: s.post(f"{base}/oauth/introspect", auth=(app["application_id"], app["secret"]), data={"token": tok}))
run("W1", lambda: s.post(f"{base}/oauth/token", auth=(app["application_id"], app["secret"]), data={"grant_type": "client_credentials", "scope": "api"}))
chain = [s.post(f"{base}/oauth/token", auth=(app["application_id"], app["secret"]), data={"grant_type": "password", "username": "root", "password": "CallgrindRoot-123", "scope": "api"}).json()["refresh_token"]]
def refresh():
    r = s.post(f"{base}/oauth/token", auth=(app["application_id"], app["secret"]), data={"grant_type": "refresh_token", "refresh_token": chain[0]})
    chain[0] = r.json()["refresh_token"]
run("W2", refresh)
PY
kill $VPID; wait $VPID 2>/dev/null || true
for f in /tmp/$OUT.cg.*; do echo "$f $(grep -E '^(summary|totals):' $f | head -1)"; done
rm -rf $D
