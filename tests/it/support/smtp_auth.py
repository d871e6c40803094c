# An SMTP server (aiosmtpd) that offers AUTH on a connection without TLS, as a careless relay
# does, keeps the mail in a Maildir and appends every login it is given to a file, one
# "LOGIN PASSWORD" line each:
#   python smtp_auth.py PORT MAILDIR LOGINS
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult

port, maildir, logins = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def authenticator(server, session, envelope, mechanism, auth_data):
    with open(logins, "a", encoding="utf-8") as f:
        f.write(f"{auth_data.login.decode()} {auth_data.password.decode()}\n")
    return AuthResult(success=True)


controller = Controller(
    Mailbox(maildir),
    hostname="127.0.0.1",
    port=port,
    authenticator=authenticator,
    auth_require_tls=False,
)
controller.start()
threading.Event().wait()
