"""K4: the phrase classifier, table-driven, no database.

Where the phrasings come from (each row names its source):

- FCC: the FCC's 2024 revocation order, FCC 24-24 (https://docs.fcc.gov/public/attachments/FCC-24-24A1.pdf),
  47 CFR 64.1200(a)(10): "stop", "quit", "end", "revoke", "opt out", "cancel", "unsubscribe" revoke per se;
  other words a reasonable person reads as a request to stop ("any reasonable means") revoke too.
- TWILIO: Twilio's default opt-out keywords and Advanced Opt-Out
  (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out): only the exact keyword is handled, so
  "STOP please" or "Stop." reach our webhook as ordinary texts.
- BRAZE: Braze's fuzzy opt-out ("goodbye", "leave me alone": messages that are no keyword but show opt-out intent,
  https://www.braze.com/docs/user_guide/channels/sms_mms_and_rcs/message_features_and_optimization/keyword_processing/fuzzy_opt_out/).
- CP: CompliancePoint's analysis of the rule (multi-word phrases, misspellings, other languages, "No Mas",
  https://compliancepoint.com/marketing-compliance/fccs-consent-revocation-rule-language-analysis-and-compliance-insights).
- ISSUE: issue 15 and SPEC §15 K4 ("please stop texting me", "don't text this number", "wrong number",
  "who is this?", "I can't stop by today, can I pay online?").
- DESK: replies a dental front desk gets to a balance reminder (appointments, payments, "stop by"), the
  must-not-opt-out side of the table.
"""

from __future__ import annotations

import pytest

from notifications.revocation import Verdict, revocation_classify, revocation_normalise

OPT, REVIEW, NONE = Verdict.OPT_OUT, Verdict.REVIEW, Verdict.NONE

TABLE = [
    # --- English: opt out ---
    ("please stop texting me", OPT, "en", "ISSUE"),
    ("Please stop texting me!!", OPT, "en", "ISSUE"),
    ("don't text this number", OPT, "en", "ISSUE"),
    ("Don’t text me again", OPT, "en", "ISSUE, curly apostrophe"),
    ("wrong number", OPT, "en", "ISSUE"),
    ("Wrong #. This isn't Maria", OPT, "en", "ISSUE"),
    ("You have the wrong number, no one by that name here", OPT, "en", "ISSUE"),
    ("remove me from your list", OPT, "en", "CP"),
    ("Take me off your list please", OPT, "en", "CP"),
    ("no more messages", OPT, "en", "CP"),
    ("leave me alone", OPT, "en", "BRAZE"),
    ("Stop.", OPT, "en", "TWILIO: not the exact keyword"),
    ("STOP please", OPT, "en", "TWILIO"),
    ("stop it", OPT, "en", "TWILIO"),
    ("STOP STOP STOP", OPT, "en", "FCC"),
    ("Unsubscribe me", OPT, "en", "FCC"),
    ("opt-out", OPT, "en", "FCC"),
    ("I want to opt out", OPT, "en", "FCC"),
    ("Quit texting me", OPT, "en", "FCC"),
    ("cancel please", OPT, "en", "FCC"),
    ("I don't want these texts anymore", OPT, "en", "CP"),
    ("stop sending me messages, I already paid", OPT, "en", "CP"),
    ("STOP 🛑", OPT, "en", "CP: emoji"),
    ("ｓｔｏｐ ｔｅｘｔｉｎｇ ｍｅ", OPT, "en", "CP: full-width letters from a phone keyboard"),
    ("who is this? stop texting me", OPT, "en", "ISSUE: an opt-out phrase wins over a question"),
    # --- Spanish: opt out ---
    ("no me mande mensajes", OPT, "es", "CP"),
    ("No me manden más mensajes por favor", OPT, "es", "CP"),
    ("número equivocado", OPT, "es", "CP"),
    ("Numero equivocado!!", OPT, "es", "CP: no accent"),
    ("ya no me escriban", OPT, "es", "CP"),
    ("baja", OPT, "es", "CP"),
    ("BAJA por favor", OPT, "es", "CP"),
    ("dejen de enviarme mensajes", OPT, "es", "CP"),
    ("Déjenme en paz", OPT, "es", "BRAZE, in Spanish"),
    ("no más", OPT, "es", "CP: 'No Mas'"),
    ("Quiero darme de baja", OPT, "es", "CP"),
    ("no quiero recibir mas mensajes", OPT, "es", "CP"),
    ("Se equivocó de número", OPT, "es", "CP"),
    ("borren mi numero", OPT, "es", "CP"),
    ("no es mi número", OPT, "es", "CP"),
    # --- might be: review ---
    ("who is this?", REVIEW, "en", "ISSUE"),
    ("Who's this", REVIEW, "en", "ISSUE"),
    ("is this a scam", REVIEW, "en", "CP"),
    ("stop what?", REVIEW, "en", "DESK"),
    ("I want to stop the payment plan?", REVIEW, "en", "DESK: stop the plan or the texts?"),
    ("How did you get my number?", REVIEW, "en", "DESK"),
    ("I never signed up for this", REVIEW, "en", "DESK"),
    ("¿quién es?", REVIEW, "es", "ISSUE"),
    ("Quien habla?", REVIEW, "es", "DESK"),
    ("esto es una estafa?", REVIEW, "es", "DESK"),
    ("🛑", REVIEW, "en", "CP: emoji alone"),
    # --- must not opt out ---
    ("I can't stop by today, can I pay online?", NONE, "", "ISSUE"),
    ("don't stop, I will pay friday", NONE, "", "DESK"),
    ("Please don't stop the reminders, they help", NONE, "", "DESK"),
    ("can you stop by", NONE, "", "DESK"),
    ("I'll stop in tomorrow to pay", NONE, "", "DESK"),
    ("Stop sign", NONE, "", "DESK"),
    ("no, I paid already", NONE, "", "DESK"),
    ("I will pay at the end of the month", NONE, "", "DESK"),
    ("Don't call me, text me instead", NONE, "", "DESK: calls are not texts"),
    ("Can I cancel my appointment?", NONE, "", "DESK"),
    ("ok thanks", NONE, "", "DESK"),
    ("Yes I got it", NONE, "", "DESK"),
    ("no mandé el pago todavía, lo hago mañana", NONE, "", "DESK"),
    ("Gracias, pago el viernes", NONE, "", "DESK"),
    ("paso mañana a pagar", NONE, "", "DESK"),
    ("No paren, me sirven los recordatorios", NONE, "", "DESK"),
    ("👍", NONE, "", "DESK"),
    ("", NONE, "", "an empty body (MMS without text)"),
]


@pytest.mark.parametrize(
    ("text", "verdict", "language", "source"), TABLE, ids=[row[0] or "empty" for row in TABLE]
)
def test_each_real_world_reply_gets_its_verdict(text, verdict, language, source):
    result = revocation_classify(text)

    assert result.verdict == verdict, (text, result, source)
    if verdict != NONE:
        assert result.language == language
        assert result.rule  # the row that decided is kept on the review item
    else:
        assert result.rule == ""


def test_the_table_has_at_least_forty_rows_in_each_direction_and_both_languages():
    assert len(TABLE) >= 40
    assert {row[1] for row in TABLE} == {OPT, REVIEW, NONE}
    assert {row[2] for row in TABLE if row[1] != NONE} == {"en", "es"}


@pytest.mark.parametrize(
    "text",
    [
        "x" * 5000,
        "please stop texting me " * 250,
        "\x00STOP\x00 texting me",
        "stop \ud83d texting me",  # a lone surrogate, as a broken encoder can hand one on
        "🙏" * 3000,
        "\u202estop texting me\u202c",
        "\ufeff\u200bstop\u200b texting me",
    ],
    ids=["5000-chars", "repeated", "nul-bytes", "lone-surrogate", "emoji", "bidi", "zero-width"],
)
def test_any_text_of_any_length_or_encoding_is_classified_without_raising(text):
    result = revocation_classify(text)

    assert result.verdict in (OPT, REVIEW, NONE)
    assert "\x00" not in revocation_normalise(text)


def test_a_long_text_that_asks_to_stop_opts_out():
    assert revocation_classify("blah " * 900 + "please stop texting me").verdict == OPT


def test_normalising_folds_case_accents_apostrophes_and_punctuation():
    assert revocation_normalise("  ¿Quién   ES?! Don’t… ") == "quien es dont"
