"""A real SMTP server for the tests (aiosmtpd), saving what it receives as files.

Run by tests/it/support/smtp.rs with:
    python3 smtp_sink.py --dir DIR [--port PORT] [--user USER --password PASSWORD]
                         [--starttls | --implicit-tls] [--cert PEM --key PEM]
                         [--temporary-failure]

It listens on 127.0.0.1:PORT (0: any free port) and prints the bound port on stdout as its
first line, once it accepts connections. Each message it accepts becomes one JSON file
`DIR/NNNNNN.json` (written to a temporary name first, then renamed, so a reader never sees a
partial file):

    {"seq": 1, "mail_from": "...", "rcpt_tos": ["..."], "auth_login": "user" or null,
     "tls": true/false, "data": "<the message as sent after DATA, CRLF line ends>"}

Options:
  --user/--password  AUTH (PLAIN and LOGIN) with these credentials is required before MAIL.
                     Allowed without TLS (tests of plain SMTP).
  --starttls         STARTTLS offered with --cert/--key and required before any mail.
  --implicit-tls     TLS from the first byte (smtps://) with --cert/--key.
  --temporary-failure
                     Start failing: while the file DIR/temporary-failure exists, every DATA is
                     answered `451 4.3.0` and one line is appended to DIR/rejected.log.
                     Create or delete that file to switch at any time.

The server stops when its standard input closes (the test process died) or on SIGTERM.
Its log goes to DIR/sink.log.
"""
import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import threading
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

FAIL_FLAG = "temporary-failure"


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.seq = 0

    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(os.path.join(self.directory, FAIL_FLAG)):
            with open(os.path.join(self.directory, "rejected.log"), "a") as log:
                log.write(json.dumps({"rcpt_tos": envelope.rcpt_tos}) + "\n")
            return "451 4.3.0 Temporary failure, try again later"
        self.seq += 1
        content = envelope.original_content or b""
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        record = {
            "seq": self.seq,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "auth_login": auth_login(session),
            "tls": ssl_object is not None,
            "data": content.decode("utf-8", errors="replace"),
        }
        name = os.path.join(self.directory, f"{self.seq:06}.json")
        with open(name + ".tmp", "w") as out:
            json.dump(record, out)
        os.rename(name + ".tmp", name)
        logging.info("saved message %d for %s", self.seq, envelope.rcpt_tos)
        return "250 2.0.0 OK: queued"


def auth_login(session):
    data = session.auth_data
    if isinstance(data, LoginPassword):
        return data.login.decode("utf-8", errors="replace")
    if isinstance(data, (bytes, str)):
        return data.decode() if isinstance(data, bytes) else data
    return None


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        logging.info("AUTH %s as %r: %s", mechanism, getattr(auth_data, "login", None), ok)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def tls_context(args):
    if not (args.cert and args.key):
        sys.exit("--starttls and --implicit-tls need --cert and --key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    return context


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--temporary-failure", action="store_true")
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    logging.basicConfig(
        filename=os.path.join(args.dir, "sink.log"),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.temporary_failure:
        open(os.path.join(args.dir, FAIL_FLAG), "w").close()

    smtp_options = {"hostname": "sink.test", "timeout": 30}
    if args.user is not None:
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        smtp_options.update(
            authenticator=authenticator(args.user, args.password or ""),
            auth_required=True,
            # Plain SMTP tests authenticate without TLS; with implicit TLS aiosmtpd does not
            # know the connection is encrypted, so it must not insist either.
            auth_require_tls=args.starttls,
        )
    server_ssl = None
    if args.starttls:
        smtp_options.update(tls_context=tls_context(args), require_starttls=True)
    elif args.implicit_tls:
        server_ssl = tls_context(args)

    loop = asyncio.get_running_loop()
    handler = Sink(args.dir)
    server = await loop.create_server(
        lambda: SMTP(handler, loop=loop, **smtp_options),
        host="127.0.0.1",
        port=args.port,
        ssl=server_ssl,
        reuse_address=True,
    )
    port = server.sockets[0].getsockname()[1]
    logging.info("listening on 127.0.0.1:%d", port)
    print(port, flush=True)

    stop = asyncio.Event()

    def watch_stdin():
        # EOF on stdin: the test process is gone (or stopped us); so are we.
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
