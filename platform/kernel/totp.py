"""The optional TOTP second factor (RFC 6238, 30-second steps, 6 digits; any authenticator app).

A person turns it on in two steps (a secret, then a first code that proves the app has it);
from then on a login and a key made with the password need a code as well. A code works once
(the last step used is stored) and one step of clock drift either way is accepted.

In production, operator admins and finance must have it on: their logins and password-made keys
are refused until they turn it on (with the personal key their invitation gave them).
"""

from __future__ import annotations

import pyotp

from kernel.accounts import Person
from kernel.auth import Role
from kernel.clock import clock
from kernel.errors import Conflict, Forbidden, Unauthorized

ISSUER = "Marketplace"
STEP_SECONDS = 30
REQUIRED_IN_PRODUCTION: dict[Role, frozenset[str]] = {Role.OPERATOR: frozenset({"admin", "finance"})}


def is_on(person: Person) -> bool:
    return person.totp_confirmed_at is not None


def start(person: Person) -> tuple[str, str]:
    """A new secret for `person` (not on until confirmed): (secret, otpauth:// URI for a QR code)."""
    if is_on(person):
        raise Conflict("TOTP is already on: turn it off first to change the secret")
    person.totp_secret = pyotp.random_base32()
    uri = pyotp.TOTP(person.totp_secret).provisioning_uri(name=person.email, issuer_name=ISSUER)
    return person.totp_secret, uri


def _accept(person: Person, code: str | None) -> bool:
    """Whether `code` is valid now and was not used before; records its step when it is."""
    if not person.totp_secret or not code:
        return False
    totp = pyotp.TOTP(person.totp_secret)
    step = int(clock.now().timestamp() // STEP_SECONDS)
    for candidate in (step, step - 1, step + 1):
        if candidate <= (person.totp_last_step or -1):
            continue  # used already (or older than one used): a code works once
        if totp.verify(code, for_time=candidate * STEP_SECONDS):
            person.totp_last_step = candidate
            return True
    return False


def confirm(person: Person, code: str) -> None:
    if is_on(person):
        raise Conflict("TOTP is already on")
    if not person.totp_secret:
        raise Conflict("start with POST /v1/me/totp to get a secret")
    if not _accept(person, code):
        raise Unauthorized("that code is not valid: check the app's clock and try the next code")
    person.totp_confirmed_at = clock.now()


def turn_off(person: Person, code: str) -> None:
    if not is_on(person):
        raise Conflict("TOTP is not on")
    if not _accept(person, code):
        raise Unauthorized("that code is not valid")
    person.totp_secret = None
    person.totp_confirmed_at = None
    person.totp_last_step = None


def check_second_factor(person: Person, code: str | None, *, kind: Role, role: str, production: bool) -> None:
    """At a login or a password-made key: the code when TOTP is on; TOTP itself where required."""
    if is_on(person):
        if not _accept(person, code):
            raise Unauthorized("send a valid totp_code from your authenticator app")
        return
    if production and role in REQUIRED_IN_PRODUCTION.get(kind, frozenset()):
        raise Forbidden(f"a {kind.value} {role} must turn on TOTP first (POST /v1/me/totp with the key from "
                        "your invitation)")
