//! Routing: which authorities a message goes to, by default (docs/formats/canonical-v1.md's table). Policy
//! then decides which of them may receive it.

use jxg_schema::{Body, Message};

/// An authority the routing table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recipient {
    Police,
    Prosecution,
    Courts,
    Prison,
}

impl Recipient {
    pub const ALL: [Recipient; 4] = [
        Recipient::Police,
        Recipient::Prosecution,
        Recipient::Courts,
        Recipient::Prison,
    ];

    /// The authority id it is registered under.
    pub fn as_str(self) -> &'static str {
        match self {
            Recipient::Police => "police",
            Recipient::Prosecution => "prosecution",
            Recipient::Courts => "courts",
            Recipient::Prison => "prison",
        }
    }
}

/// The default recipients of a message, in the table's order.
pub fn default_recipients(m: &Message) -> Vec<Recipient> {
    use Recipient::*;
    let mut r = Vec::new();
    match &m.body {
        Body::OffenceReported(_) | Body::PersonCharged(_) => r.push(Prosecution),
        Body::PersonArrested(b) => {
            r.push(Prosecution);
            if b.custody_hearing_requested {
                r.push(Courts);
            }
        }
        Body::IndictmentFiled(_) => r.extend([Courts, Police]),
        Body::ChargesWithdrawn(b) => {
            r.push(Police);
            if m.case.court_case.is_some() || b.court.is_some() {
                r.push(Courts);
            }
        }
        Body::HearingScheduled(b) => {
            r.extend([Prosecution, Police]);
            if b.defendant_in_custody {
                r.push(Prison);
            }
        }
        Body::RemandOrdered(_) => r.extend([Prison, Police, Prosecution]),
        Body::VerdictIssued(b) => {
            r.extend([Prosecution, Police]);
            if b.sentence.must_be_enforced() {
                r.push(Prison);
            }
        }
        Body::CustodyAdmitted(_) | Body::CustodyReleased(_) => r.extend([Police, Prosecution]),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The table served to operators and the rules the pipeline applies must not drift apart:
    /// every sample's default recipients are the row's unconditional recipients plus, at most,
    /// its conditional ones, and every type in the table has a sample.
    #[test]
    fn the_served_table_agrees_with_the_rules_for_every_sample() {
        let table = table();
        let rows = table.as_array().unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/canonical/valid");
        let mut seen = BTreeSet::new();
        for f in std::fs::read_dir(&dir).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_none_or(|x| x != "json") {
                continue; // the folder's README
            }
            let m: Message = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let ty = serde_json::to_value(m.message_type()).unwrap();
            let ty = ty.as_str().unwrap().to_string();
            let row = rows
                .iter()
                .find(|r| r["type"] == ty.as_str())
                .unwrap_or_else(|| panic!("no row for {ty}"));
            let names = |v: &serde_json::Value| -> BTreeSet<String> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect()
            };
            let always = names(&row["recipients"]);
            let mut possible = always.clone();
            for (k, v) in row.as_object().unwrap() {
                if k.starts_with("when_") {
                    possible.extend(names(v));
                }
            }
            let got: BTreeSet<String> = default_recipients(&m)
                .into_iter()
                .map(|r| r.as_str().to_string())
                .collect();
            assert!(
                always.is_subset(&got) && got.is_subset(&possible),
                "{}: rules give {got:?}, the table says {always:?} of {possible:?}",
                path.display()
            );
            seen.insert(ty);
        }
        let listed: BTreeSet<String> = rows
            .iter()
            .map(|r| r["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(seen, listed, "every routed type has a sample");
    }
}
