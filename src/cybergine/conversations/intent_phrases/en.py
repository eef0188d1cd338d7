"""English phrases of the intent detector: asking for a person or for a human review."""

from __future__ import annotations

from cybergine.conversations.intent_phrases.base import Phrases, negation

_EN_PEOPLE = (
    r"(?:human|person|agent|operator|representative|rep|advisor|adviser|consultant|manager"
    r"|supervisor|employee|staff member|team member|member of (?:staff|the team|your team)"
    r"|customer (?:service|support|care)(?: (?:agent|representative|rep|team|person))?"
    r"|support (?:agent|team|staff|person)|human being)s?"
)
_EN_DET = (
    r"(?:(?:a|an|the|some|any|your|one of (?:the|your)|real|live|actual|human|proper"
    r"|genuine) )*"
)
_EN_ANYONE = rf"{_EN_DET}(?:{_EN_PEOPLE}|people|someone|somebody|anyone|anybody)"
_EN_SOMEONE_SPECIFIC = rf"{_EN_DET}{_EN_PEOPLE}"
_EN_CORE = r"(?:human|person|agent|operator|representative)s?"
_EN_REVIEWER = (
    r"(?:a |an |one of your |some )?(?:real |actual |live )?(?:human|person|people|staff"
    r"|member of (?:staff|the team|your team)|team member|employee|manager|supervisor"
    r"|someone|somebody)"
)
_EN_DECISION = (
    r"(?:decision|refusal|rejection|denial|verdict|ruling|determination|ban|suspension)s?"
)

PHRASES = Phrases(
    handoff=(
        rf"(?:talk|speak|chat|get through|be put through|be transferred|be connected"
        rf"|communicate) (?:to|with) {_EN_ANYONE}",
        rf"(?:connect|transfer|put|pass|send|forward|escalate|hand) (?:me|this|it|my"
        rf" (?:case|request|question|complaint))(?: over| through| on)? (?:to|with)"
        rf" {_EN_ANYONE}",
        rf"(?:(?:would|d) (?:like|prefer|rather have)|want|need|request|demand|get me|give me"
        rf"|find me|bring me|(?:can|could|may) i (?:have|get|see|reach|contact))"
        rf" {_EN_SOMEONE_SPECIFIC}",
        rf"(?:contact|reach|call) (?:a |an )?(?:real |live |actual )?{_EN_CORE}",
        r"(?:real|actual|live|genuine) (?:human|person|people|agent|operator|representative)s?",
        r"human (?:agent|operator|representative|assistance|help|support|contact)s?",
        # "is there a person I can talk to?", not "is there a person limit?"
        rf"is there (?:a |an |any )?(?:real |live |actual )?{_EN_CORE}"
        r"(?=$| (?:i|we|to|who|that|available|there|here|around|online|please)\b)",
        r"is (?:there )?(?:anyone|anybody|someone|somebody) (?:there|here|real|human|available)",
    ),
    review=(
        r"(?:human|manual) (?:review|reviewer|oversight|intervention|reconsideration"
        r"|re examination|reassessment|assessment|evaluation|decision|judgement|judgment)",
        rf"(?:review(?:ed)?|reconsider(?:ed)?|re examined?|reassess(?:ed)?|re evaluated?"
        rf"|evaluated|assessed|decided) by {_EN_REVIEWER}",
        r"(?:human|person|staff member|member of staff|manager|supervisor)"
        r" (?:to |should |must |can |could |would |will |please )?"
        r"(?:review|reconsider|re examine|reassess|re evaluate|double check)",
        rf"(?:contest|dispute|challenge|appeal|appeal against|object to|oppose|overturn"
        rf"|reverse|reconsider|review|revisit|re examine|reassess|question)"
        rf" (?:(?:the|this|that|your|my|its|an|a|their) )?(?:(?:automated|automatic|ai|bot"
        rf"|computer|algorithmic|system|machine|credit|refund|account) )?{_EN_DECISION}",
        r"(?:want|wish|like|need|going|intend|able|right|possible|how) to appeal",
        r"(?:how|where|can|may|could) (?:do |can |could )?i appeal",
        r"(?:file|lodge|submit|make|start|open) (?:an |my )?appeal",
        r"(?:not|never) (?:to )?be (?:subject|subjected) to (?:an |a )?(?:solely |purely"
        r" |fully |entirely )?(?:automated|automatic)",
        r"(?:object|objection|objecting) to (?:the |this |an |a )?(?:solely |purely |fully )?"
        r"(?:automated|automatic|ai)",
        r"(?:article|art) 22 (?:of (?:the )?)?gdpr",
    ),
    bare=(
        rf"(?:(?:i )?(?:want|need) |give me |get me |(?:talk|speak|chat) (?:to|with) )?"
        rf"{_EN_ANYONE}",
    ),
    bare_review=(
        r"(?:i (?:want to |would like to |d like to )?)?(?:appeal|contest|object)"
        r"(?: (?:this|that|it))?",
        r"(?:human|manual) review",
        r"review by (?:a )?(?:human|person)",
    ),
    fillers=(
        "please",
        "pls",
        "plz",
        "now",
        "right now",
        "asap",
        "immediately",
        "urgent",
        "urgently",
        "thanks",
        "thank you",
        "thx",
        "ty",
        "hi",
        "hello",
        "hey",
        "ok",
        "okay",
        "yes",
        "yeah",
        "just",
        "only",
        "there",
        "here",
    ),
    negation=negation(
        r"not|never|no longer",
        r"want|need|wish|like|care|going",
        r"to",
        r"are you|are u|r u|is this|is that|is it|you are|you re|u r|i am|i m|was that"
        r"|were you|am i (?:talking|speaking|chatting) (?:to|with)",
    ),
)
