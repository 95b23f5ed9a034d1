"""Revocation in any reasonable manner (K4): what an inbound text that is not a keyword asks for.

A pure function over one data table. ``revocation_classify(text)`` answers ``opt_out`` (a reasonable person
reads it as "stop texting me": the sender's number is opted out at once, as for STOP), ``review`` (it might be:
a person decides, on the replies review queue) or ``none`` (an ordinary reply: nothing changes).

How a text is read: it is normalised first (``revocation_normalise``: any string, any length, NUL bytes, lone
surrogates, emoji, accents, curly apostrophes and punctuation), then

1. the *guards* are cut out of it: phrases with a STOP-family word that do not ask to stop texting ("can you
   stop by", "don't stop", "stop sign"), so that what is left is read without them;
2. an *opt-out* phrase anywhere in what is left opts out;
3. else a *review* phrase ("who is this?", "¿quién es?", "is this a scam") sends it to the queue;
4. else a STOP-family word still standing on its own ("stop what?", "I want to stop the payment plan")
   sends it to the queue: it might be a revocation and we cannot tell.

Sources of the phrasings (docs/decisions.md, "K4", lists each row; marked there as needing counsel's review):
the FCC's 2024 revocation order, FCC 24-24 (https://docs.fcc.gov/public/attachments/FCC-24-24A1.pdf; 47 CFR
64.1200(a)(10)-(12)): "stop", "quit", "end", "revoke", "opt out", "cancel" or "unsubscribe" revoke per se, and any
other wording a reasonable person would read as a request to stop; Twilio's default opt-out keywords
(https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out); the CTIA Messaging Principles and Best
Practices (opt-out "in any reasonable manner", keywords in the consumer's language); Braze's "fuzzy opt-out"
examples ("leave me alone", https://www.braze.com/docs/user_guide/channels/sms_mms_and_rcs/
message_features_and_optimization/keyword_processing/fuzzy_opt_out/); and CompliancePoint's reading of the
rule ("No Mas" in Spanish, https://compliancepoint.com/marketing-compliance/fccs-consent-revocation-rule-
language-analysis-and-compliance-insights).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Verdict(StrEnum):
    OPT_OUT = "opt_out"
    REVIEW = "review"
    NONE = "none"


@dataclass(frozen=True)
class Rule:
    """One row of the table: a name (kept on the review item), the verdict, the language of the phrase and a
    pattern over the *normalised* text (lower case, no accents, no apostrophes, single spaces)."""

    name: str
    verdict: Verdict
    language: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    rule: str = ""
    language: str = "en"


def _rule(name: str, verdict: Verdict, language: str, pattern: str) -> Rule:
    return Rule(name=name, verdict=verdict, language=language, pattern=re.compile(pattern))


OPT_OUT, REVIEW = Verdict.OPT_OUT, Verdict.REVIEW

# The FCC's per-se words (47 CFR 64.1200(a)(10)) and Twilio's defaults, as they read once normalised.
STOP_FAMILY: Final = r"(?:stop|stopall|unsubscribe|cancel|end|quit|revoke|opt ?out)"
_POLITE: Final = (
    r"(?: (?:it|now|please|pls|plz|thanks|thank you|thx|ty|asap|already|for good|immediately|\U0001f6d1))*"
)
_TEXTS_EN: Final = r"(?:texts?|txts?|messages?|msgs?|sms|reminders?|notifications?)"
# Calls are not texts: "don't call me, text me" must not revoke the texts.
_SEND_EN: Final = (
    r"(?:texting|txting|texing|messaging|msging|sending|contacting|bothering|harassing|harrassing)"
)
_TO_ME_EN: Final = r"(?:me|this number|this phone|my (?:phone|number|cell)|us|here|him|her)"
_SEND_ES: Final = (
    r"(?:mande|manden|mandes|envie|envien|envies|escriba|escriban|escribas|textee|texteen|textees|contacte|"
    r"contacten|molesten|moleste)"
)
_SENDING_ES: Final = (
    r"(?:enviar|enviarme|mandar|mandarme|escribir|escribirme|textear|textearme|contactar|contactarme|molestar|"
    r"molestarme)"
)

# 1. Guards: phrases with a STOP-family word that do not revoke, cut out before anything else is read.
GUARDS: Final[tuple[re.Pattern[str], ...]] = tuple(
    re.compile(pattern)
    for pattern in (
        r"\bstop(?:ping|ped|s)? (?:by|in|over|at the office|at your office)\b",  # "can you stop by", "I'll stop in"
        r"\b(?:dont|do not|didnt|did not|never|pls dont|please dont|wont|will not) stop\b",  # "don't stop, I'll pay"
        r"\b(?:stop sign|bus stop|stop light|stoplight|non ?stop|pit stop|one stop)\b",
        r"\b(?:cant|can not|cannot|couldnt) stop\b(?! (?:" + _SEND_EN + r"|" + _TEXTS_EN + r"))",
        r"\bno paren\b|\bno pare\b",  # "no paren" (do not stop), Spanish
    )
)

# 2-3. The table. Opt-outs first: an opt-out phrase wins over a review phrase in the same text.
RULES: Final[tuple[Rule, ...]] = (
    # English
    _rule(
        "en_keyword_polite",
        OPT_OUT,
        "en",
        r"^(?:(?:please|pls|plz|ok|okay) )?" + STOP_FAMILY + r"(?: " + STOP_FAMILY + r")*" + _POLITE + r"$",
    ),
    _rule(
        "en_please_stop",
        OPT_OUT,
        "en",
        r"\b(?:please|pls|plz|just) stop\b|\bstop (?:it|please|pls|plz|now)\b",
    ),
    _rule(
        "en_stop_texting",
        OPT_OUT,
        "en",
        r"\b(?:stop|quit|cease|end) "
        + _SEND_EN
        + r"\b|\bstop (?:the |these |your |all )?"
        + _TEXTS_EN
        + r"\b",
    ),
    _rule(
        "en_dont_text",
        OPT_OUT,
        "en",
        r"\b(?:dont|do not|dnt|never|no) (?:ever )?(?:text|txt|message|msg|contact|sms) " + _TO_ME_EN + r"\b",
    ),
    _rule(
        "en_dont_want",
        OPT_OUT,
        "en",
        r"\b(?:dont|do not|no longer) (?:want|wish to (?:get|receive)|need) (?:to (?:get|receive) )?"
        r"(?:any ?more |these |your |any |the |no )?" + _TEXTS_EN + r"\b",
    ),
    _rule("en_no_more", OPT_OUT, "en", r"\bno more " + _TEXTS_EN + r"\b|\bno more texting\b"),
    _rule(
        "en_wrong_number",
        OPT_OUT,
        "en",
        r"\bwrong (?:number|person|phone|no)\b|\bnot (?:my|the right|the correct) (?:number|phone)\b"
        r"|\bno one (?:here )?(?:by|named|with) that name\b|\bnobody (?:here )?(?:by|named) that\b",
    ),
    _rule(
        "en_remove_me",
        OPT_OUT,
        "en",
        r"\b(?:remove|delete|erase) (?:me|my (?:number|phone|cell)|this number|us)\b"
        r"|\btake (?:me|my (?:phone )?number|this number|us) off\b|\bunsubscribe (?:me|us|this number)\b"
        r"|\bopt (?:me|us) out\b|\bi (?:want to |wanna |would like to )?(?:opt out|unsubscribe)\b",
    ),
    _rule(
        "en_leave_me_alone", OPT_OUT, "en", r"\b(?:leave me alone|go away|lose my number|fuck off|piss off)\b"
    ),
    # Spanish
    _rule(
        "es_keyword",
        OPT_OUT,
        "es",
        r"^(?:(?:por favor) )?(?:baja|de baja|dar de baja|alto|parar|para ya|detener|cancelar|no mas)"
        r"(?: (?:por favor|gracias|ya))*$",
    ),
    _rule(
        "es_no_me_manden",
        OPT_OUT,
        "es",
        r"\bno (?:me|nos) (?:vuelvan a |vuelva a )?" + _SEND_ES + r"\b"
        r"|\bno (?:me|nos) (?:vuelvan|vuelva) a " + _SENDING_ES + r"\b",
    ),
    _rule(
        "es_dejen_de",
        OPT_OUT,
        "es",
        r"\b(?:dejen|deje|dejar|deja|paren|pare|para|parar|basta) de " + _SENDING_ES + r"\b",
    ),
    _rule(
        "es_baja",
        OPT_OUT,
        "es",
        r"\b(?:darme|dame|denme|deme|dar|me doy|doy) de baja\b|\bde baja (?:mi|este) numero\b",
    ),
    _rule(
        "es_no_quiero",
        OPT_OUT,
        "es",
        r"\bno (?:quiero|deseo) (?:recibir |mas |seguir recibiendo )*(?:sus |estos |los |mas )?"
        r"(?:mensajes|textos|msjs|sms)\b|\bno mas (?:mensajes|textos|msjs|sms)\b",
    ),
    _rule(
        "es_wrong_number",
        OPT_OUT,
        "es",
        r"\bnumero equivocado\b|\b(?:se )?(?:equivoco|equivocaron|equivocado) de (?:numero|persona)\b"
        r"|\bno es (?:mi|el) numero\b|\bno soy esa persona\b",
    ),
    _rule(
        "es_borren",
        OPT_OUT,
        "es",
        r"\b(?:borren|borre|quiten|quite|eliminen|elimine|saquen|saque) (?:mi numero|me de (?:su|la|sus) (?:lista|base))\b"
        r"|\b(?:borrenme|quitenme|saquenme|eliminenme) de\b",
    ),
    _rule("es_dejenme", OPT_OUT, "es", r"\b(?:dejenme|dejame|dejeme) (?:en paz|tranquil[oa])\b"),
    # Might be: a person reads it.
    _rule(
        "en_who_is_this",
        REVIEW,
        "en",
        r"\bwho (?:is|s) (?:this|that|texting|sending)\b|\bwhos (?:this|that)\b|\bwho are (?:you|u)\b"
        r"|\bwho (?:r|is) u\b|\bhow did you get (?:my|this) (?:number|phone)\b|\bi dont know (?:you|who)\b",
    ),
    _rule(
        "en_scam", REVIEW, "en", r"\b(?:scam|scammer|spam|fraud|fake|phishing|is this real|is this legit)\b"
    ),
    _rule(
        "en_never_signed_up",
        REVIEW,
        "en",
        r"\bnever (?:signed up|agreed|gave (?:you )?(?:my|this) number)\b|\bnot (?:a |your )?patient\b",
    ),
    _rule(
        "es_quien_es",
        REVIEW,
        "es",
        r"\bquien (?:es|habla|eres|me escribe|manda|envia)\b|\bde donde (?:sacaron|saco|tienen) mi numero\b"
        r"|\bno (?:lo |la |los )?conozco\b",
    ),
    _rule("es_estafa", REVIEW, "es", r"\b(?:estafa|fraude|es real|es falso|spam)\b"),
    _rule("stop_emoji", REVIEW, "en", r"^\U0001f6d1(?: \U0001f6d1)*$"),
)
# 4. A STOP-family word left standing after the guards and the table: it might be a revocation.
LEFTOVER: Final = re.compile(r"\b(?:stop|stopall|unsubscribe|revoke|opt ?out|optout)\b")

# "Wrong #" is "wrong number"; apostrophes go so that "don't" and its curly form both read "dont".
_FOLD: Final = str.maketrans(
    {"\u2019": "", "\u2018": "", "'": "", "`": "", "\u00b4": "", "\u02bc": "", "#": " number "}
)
_STOP_SIGN: Final = "\U0001f6d1"


def revocation_normalise(text: str) -> str:
    """The text as the table reads it: accents and case folded, apostrophes dropped ("don't" is "dont"),
    anything else that is not a letter or digit a space, spaces collapsed. 🛑 is kept (a review row reads it).
    Never raises: lone surrogates and NUL bytes become spaces like any other symbol."""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    kept = []
    for char in folded:
        if unicodedata.combining(char):
            continue
        kept.append(char if char.isalnum() or char == _STOP_SIGN else " ")
    return " ".join("".join(kept).split())


def revocation_classify(text: str) -> Classification:
    """K4: ``opt_out``, ``review`` or ``none`` for one inbound text (not a keyword: the N2 keywords are read
    before this), with the table row that decided and the language of the phrase."""
    normal = revocation_normalise(text)
    if not normal:
        return Classification(Verdict.NONE)
    for guard in GUARDS:
        normal = guard.sub(" ", normal)
    normal = " ".join(normal.split())
    for rule in RULES:
        if rule.pattern.search(normal):
            return Classification(rule.verdict, rule.name, rule.language)
    if LEFTOVER.search(normal):
        return Classification(Verdict.REVIEW, "stop_word_in_context", "en")
    return Classification(Verdict.NONE)
