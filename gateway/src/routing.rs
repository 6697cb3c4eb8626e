//! Routing: which authorities a message goes to, by default (canonical-v1.md's table). Policy
//! then decides which of them may receive it.

use jxg_schema::{Body, Message};

/// The default recipients of a message, in the table's order.
pub fn default_recipients(m: &Message) -> Vec<&'static str> {
    let mut r = Vec::new();
    match &m.body {
        Body::OffenceReported(_) | Body::PersonCharged(_) => r.push("prosecution"),
        Body::PersonArrested(b) => {
            r.push("prosecution");
            if b.custody_hearing_requested {
                r.push("courts");
            }
        }
        Body::IndictmentFiled(_) => r.extend(["courts", "police"]),
        Body::ChargesWithdrawn(b) => {
            r.push("police");
            if m.case.court_case.is_some() || b.court.is_some() {
                r.push("courts");
            }
        }
        Body::HearingScheduled(b) => {
            r.extend(["prosecution", "police"]);
            if b.defendant_in_custody {
                r.push("prison");
            }
        }
        Body::RemandOrdered(_) => r.extend(["prison", "police", "prosecution"]),
        Body::VerdictIssued(b) => {
            r.extend(["prosecution", "police"]);
            if b.sentence.must_be_enforced() {
                r.push("prison");
            }
        }
        Body::CustodyAdmitted(_) | Body::CustodyReleased(_) => r.extend(["police", "prosecution"]),
    }
    r
}

/// The routing table as data, for `GET /admin/v1/routes` (the same rules as
/// [`default_recipients`]).
pub fn table() -> serde_json::Value {
    serde_json::json!([
        {"type": "offence.reported", "recipients": ["prosecution"]},
        {"type": "person.charged", "recipients": ["prosecution"]},
        {"type": "person.arrested", "recipients": ["prosecution"], "when_custody_hearing_requested": ["courts"]},
        {"type": "indictment.filed", "recipients": ["courts", "police"]},
        {"type": "charges.withdrawn", "recipients": ["police"], "when_before_a_court": ["courts"]},
        {"type": "hearing.scheduled", "recipients": ["prosecution", "police"], "when_defendant_in_custody": ["prison"]},
        {"type": "remand.ordered", "recipients": ["prison", "police", "prosecution"]},
        {"type": "verdict.issued", "recipients": ["prosecution", "police"], "when_sentence_must_be_enforced": ["prison"]},
        {"type": "custody.admitted", "recipients": ["police", "prosecution"]},
        {"type": "custody.released", "recipients": ["police", "prosecution"]},
    ])
}
