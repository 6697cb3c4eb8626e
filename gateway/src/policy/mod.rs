//! The policy seam: who may send which type, who may receive a message, and what of it each
//! recipient may see. This first version is an explicit allow-list and the minimisation rules
//! of security.md; the policy-file engine replaces it behind the same functions.

use std::collections::BTreeMap;

use jxg_schema::message::Role;
use jxg_schema::{Body, Message, MessageType};

/// A refusal and the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: &'static str,
    pub reason: String,
}

/// The policy in force.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Clearances per authority (`protected-address`).
    clearances: BTreeMap<String, Vec<String>>,
}

/// Which types each authority may send (canonical-v1.md, "sent by").
fn senders(t: MessageType) -> &'static [&'static str] {
    use MessageType::*;
    match t {
        OffenceReported | PersonCharged | PersonArrested => &["police"],
        IndictmentFiled | ChargesWithdrawn => &["prosecution"],
        HearingScheduled | RemandOrdered | VerdictIssued => &["courts"],
        CustodyAdmitted | CustodyReleased => &["prison"],
    }
}

impl Policy {
    pub fn new(clearances: BTreeMap<String, Vec<String>>) -> Self {
        Self { clearances }
    }

    /// May `sender` send a message of type `t`?
    pub fn may_send(&self, sender: &str, t: MessageType) -> Result<(), Refusal> {
        if senders(t).contains(&sender) {
            Ok(())
        } else {
            Err(Refusal {
                rule: "send-allow-list",
                reason: format!("{sender} may not send {t}"),
            })
        }
    }

    /// May `recipient` receive `m` at all?
    pub fn may_receive(&self, recipient: &str, m: &Message) -> Result<(), Refusal> {
        if let (Body::VerdictIssued(v), "prison") = (&m.body, recipient) {
            if !v.sentence.must_be_enforced() {
                return Err(Refusal {
                    rule: "prison-verdicts-only-when-enforced",
                    reason: "the sentence needs no enforcement by the prison service".into(),
                });
            }
        }
        Ok(())
    }

    fn has(&self, who: &str, clearance: &str) -> bool {
        self.clearances
            .get(who)
            .is_some_and(|c| c.iter().any(|x| x == clearance))
    }

    /// What `recipient` may see of `m`: everything else removed before encoding and signing.
    pub fn minimise(&self, recipient: &str, m: &Message) -> Message {
        let mut m = m.clone();
        if !matches!(recipient, "prosecution" | "courts") {
            match &mut m.body {
                Body::OffenceReported(b) => b.narrative = None,
                Body::IndictmentFiled(b) => b.narrative = None,
                _ => {}
            }
        }
        if recipient == "prison" {
            let keep =
                |p: &jxg_schema::message::Person| !matches!(p.role, Role::Victim | Role::Witness);
            match &mut m.body {
                Body::OffenceReported(b) => b.persons.retain(keep),
                Body::HearingScheduled(b) => b.persons.retain(keep),
                _ => {}
            }
        }
        if !self.has(recipient, "protected-address") {
            for_each_person(&mut m.body, |p| {
                if p.address_protected {
                    p.address = None;
                }
            });
        }
        m
    }
}

fn for_each_person(b: &mut Body, mut f: impl FnMut(&mut jxg_schema::message::Person)) {
    match b {
        Body::OffenceReported(b) => b.persons.iter_mut().for_each(f),
        Body::PersonCharged(b) => f(&mut b.person),
        Body::PersonArrested(b) => f(&mut b.person),
        Body::IndictmentFiled(b) => b.defendants.iter_mut().for_each(f),
        Body::ChargesWithdrawn(b) => f(&mut b.person),
        Body::HearingScheduled(b) => b.persons.iter_mut().for_each(f),
        Body::RemandOrdered(b) => f(&mut b.person),
        Body::VerdictIssued(b) => f(&mut b.defendant),
        Body::CustodyAdmitted(b) | Body::CustodyReleased(b) => f(&mut b.person),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Message {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/samples/canonical/valid")
            .join(name);
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    /// Decisions as a table: sender, type, allowed.
    #[test]
    fn send_allow_list() {
        use MessageType::*;
        let p = Policy::default();
        let table = [
            ("police", OffenceReported, true),
            ("police", VerdictIssued, false),
            ("courts", VerdictIssued, true),
            ("prison", CustodyAdmitted, true),
            ("prison", RemandOrdered, false),
            ("prosecution", IndictmentFiled, true),
            ("unknown", OffenceReported, false),
        ];
        for (who, t, ok) in table {
            assert_eq!(p.may_send(who, t).is_ok(), ok, "{who} {t}");
        }
    }

    #[test]
    fn minimisation_rules_of_security_md() {
        let p = Policy::default();
        let m = sample("offence.reported.json");
        let Body::OffenceReported(b) = &p.minimise("prosecution", &m).body else {
            panic!()
        };
        assert!(b.narrative.is_some());
        assert!(b.persons[1].address.is_none(), "protected address removed");
        assert!(b.persons[0].address.is_some());
        let Body::OffenceReported(b) = &p.minimise("prison", &m).body else {
            panic!()
        };
        assert!(b.narrative.is_none());
        assert!(
            b.persons
                .iter()
                .all(|p| !matches!(p.role, Role::Victim | Role::Witness))
        );
        let cleared = Policy::new(
            [(
                "prosecution".to_string(),
                vec!["protected-address".to_string()],
            )]
            .into(),
        );
        let Body::OffenceReported(b) = &cleared.minimise("prosecution", &m).body else {
            panic!()
        };
        assert!(b.persons[1].address.is_some());
        assert!(
            p.may_receive("prison", &sample("verdict.issued.json"))
                .is_ok()
        );
        let mut fine_only = sample("verdict.issued-suspended.json");
        if let Body::VerdictIssued(v) = &mut fine_only.body {
            v.sentence.conditions.clear();
        }
        assert_eq!(
            p.may_receive("prison", &fine_only).unwrap_err().rule,
            "prison-verdicts-only-when-enforced"
        );
    }
}
