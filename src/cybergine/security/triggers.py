"""What the security monitor watches (policy §12): each trigger, the setting holding its
threshold, what it counts and what the owners are told. Data only; ``monitor`` counts."""

from __future__ import annotations

from dataclasses import dataclass

from cybergine.security.models import AlertKind

# The audit entries the triggers count, as the code that records them names them.
LOGIN_FAILED = "auth.login.failed"
LOGIN_THROTTLED = "auth.login.throttled"
PERMISSION_DENIED = "auth.permission.denied"
CUSTOMER_EXPORTED = "customer.exported"
CUSTOMER_ERASED = "customer.erased"

# The monitor's own entry, one per alert raised.
ALERT_ACTION = "security.alert.raised"


@dataclass(frozen=True)
class Trigger:
    kind: AlertKind
    setting: str  # the ``Settings`` field with its threshold
    audit_actions: tuple[str, ...]  # the entries counted; none: ``security_signals``
    subject: str  # the e-mail's subject
    what: str  # the e-mail's first line: what happened, in the owners' terms


TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        AlertKind.FAILED_SIGN_INS,
        "security_alert_failed_sign_ins",
        (LOGIN_FAILED, LOGIN_THROTTLED),
        "Security alert: repeated failed sign-ins",
        "Someone tried again and again to sign in to the account of a member of your "
        "team with a wrong password. The account stays throttled; the member may want "
        "to choose a new password.",
    ),
    Trigger(
        AlertKind.PERMISSION_DENIALS,
        "security_alert_permission_denials",
        (PERMISSION_DENIED,),
        "Security alert: many requests refused for their role",
        "Many requests in your organisation were refused because their role does not "
        "allow them: a person or an API key is trying what it may not.",
    ),
    Trigger(
        AlertKind.SIGNATURE_FAILURES,
        "security_alert_signature_failures",
        (),
        "Security alert: WhatsApp webhooks with bad signatures",
        "Webhooks naming one of your WhatsApp numbers arrived with a signature that does "
        "not match its app secret and were refused: someone may be forging them, or the "
        "app secret changed.",
    ),
    Trigger(
        AlertKind.EXPORTS_AND_ERASURES,
        "security_alert_exports_and_erasures",
        (CUSTOMER_EXPORTED, CUSTOMER_ERASED),
        "Security alert: many customers exported or erased",
        "An unusual number of customers' data was exported or erased in your "
        "organisation in a short time.",
    ),
)
