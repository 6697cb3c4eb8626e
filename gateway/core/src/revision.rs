//! Corrections and withdrawals (docs/formats/canonical-v2.md, "Corrections and withdrawals"):
//! the message one acts on, who was given it, and what each recipient is told.
//!
//! A correction is a full replacement of an earlier message; a withdrawal names an earlier
//! message and why. Either acts on the latest version of a message only: one already replaced
//! or withdrawn is refused (409), naming what replaced or withdrew it. Who must be told is
//! computed from the store, never guessed: every recipient given a copy of the version acted
//! on (its delivery rows), and every recipient the routing and the policies in force give the
//! correction.

use std::collections::BTreeSet;

use jxg_schema::message::{Replaces, WITHDRAWN, Withdrawn};
use jxg_schema::{Document, Message, Violation, Violations, Withdrawal};
use uuid::Uuid;

use crate::audit::{Event, Record};
use crate::pipeline::Refused;
use crate::store::{Skipped, Store, StoredMessage};

/// What a recipient of a correction is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    /// It was given the message replaced and may hold the correction: the correction.
    Correction,
    /// It was given the message replaced and may not hold the correction: a withdrawal of the
    /// message replaced, for erasure.
    Withdrawal,
    /// It was not given the message replaced and the correction is routed to it: the corrected
    /// message as a new message.
    New,
}

/// What a correction or withdrawal acts on.
#[derive(Debug, Clone)]
pub struct Original {
    pub stored: StoredMessage,
    pub message: Message,
    /// The recipients that were given a copy of it, or that could not be told of the version
    /// before it and so still hold that one.
    pub holders: BTreeSet<String>,
}

impl Original {
    /// The reference to it a recipient is given.
    pub fn replaces(&self, reason: jxg_schema::message::CorrectionReason) -> Replaces {
        Replaces {
            message_id: Some(self.stored.id),
            source_document_id: Some(self.stored.source_document_id.clone()),
            reason,
        }
    }

    /// A withdrawal of it, for `reason`, as a recipient is given it: the envelope is the
    /// withdrawal's own (`id`, `source_document_id`, `occurred_at`), in the original's case and
    /// under its purpose and classification.
    pub fn withdrawal(
        &self,
        id: Uuid,
        sender: &str,
        source_document_id: &str,
        occurred_at: jxg_schema::values::Instant,
        received_at: jxg_schema::values::Instant,
        reason: jxg_schema::message::WithdrawalReason,
    ) -> Withdrawal {
        let m = &self.message;
        Withdrawal {
            id: Some(id),
            sender: Some(sender.to_string()),
            source_document_id: source_document_id.to_string(),
            occurred_at,
            received_at: Some(received_at),
            purpose: m.purpose,
            classification: m.classification,
            case: m.case.clone(),
            correlation_id: m.correlation_id.clone(),
            withdrawn: Withdrawn {
                message_id: Some(self.stored.id),
                source_document_id: Some(self.stored.source_document_id.clone()),
                reason,
            },
        }
    }
}

/// Whether a delivered copy is a withdrawal: a copy of a withdrawal, or a correction's copy for a
/// recipient that may no longer hold the message (the store reads which from the copy's
/// signature).
pub fn is_withdrawal(e: &crate::store::OutboxEntry) -> bool {
    e.message_type == WITHDRAWN
}

/// The reason recorded for a recipient that must be told of a correction or withdrawal its
/// format cannot express: an operator tells it by other means.
pub const FLAGGED: &str = "flagged for an operator";

/// What an operator's confirmation adds to a flagged recipient's reason: it was told by other
/// means (by whom, when).
const NOTIFIED: &str = "; notified by other means, as ";

/// Whether a flagged recipient's reason says an operator has since told it by other means.
pub fn is_notified(reason: &str) -> bool {
    reason.contains(NOTIFIED)
}

/// What an operator's confirmation that `recipient`, flagged in rectification `m`, was told by
/// other means changes: the flag's reason says so (the recipient still holds what it was told,
/// for any later correction), and the audit entry of it. `Err`: `recipient` is not flagged in
/// `m`; `Ok(None)`: it was confirmed already.
pub fn confirm_notified(
    m: &mut crate::store::MessageRec,
    recipient: &str,
    actor: &str,
    at: &str,
) -> Result<Option<Vec<Record>>, crate::store::DoesNotApply> {
    let Some(s) = m
        .skipped
        .iter_mut()
        .find(|s| s.recipient == recipient && s.reason.starts_with(FLAGGED))
    else {
        return Err(crate::store::DoesNotApply);
    };
    if is_notified(&s.reason) {
        return Ok(None);
    }
    s.reason = format!("{}{NOTIFIED}{actor} confirmed at {at}", s.reason);
    Ok(Some(vec![
        Record::new(Event::Notified, actor)
            .message(m.id, &m.message_type, None)
            .recipient(recipient)
            .subjects(&m.subjects)
            .detail("told by other means of what its format cannot carry"),
    ]))
}

/// A recipient that could not be told, kept with the message (`GET /v1/messages/{id}`).
pub fn flagged(recipient: &str, why: &str) -> Skipped {
    Skipped::new(
        recipient,
        format!("{FLAGGED}: {why}; notify {recipient} by other means"),
    )
}

fn invalid(path: &str, message: impl Into<String>) -> Refused {
    Refused::Document(jxg_adapters::Rejection::Invalid(Violations(vec![
        Violation::new(path, message),
    ])))
}

/// Finds the message a correction or withdrawal of `sender` names (by the gateway's id, or by
/// `sender`'s own document id), and checks that it is the latest version of itself. `at` is the
/// path of the reference in the document (`replaces`, `body`), for the errors.
pub async fn original(
    store: &Store,
    sender: &str,
    message_id: Option<Uuid>,
    source_document_id: Option<&str>,
    at: &str,
) -> Result<Original, Refused> {
    let id = match (message_id, source_document_id) {
        (Some(id), _) => id,
        (None, Some(key)) => match store.idempotency(sender, key).await? {
            Some((rec, _)) => rec.message_id,
            None => {
                return Err(Refused::Conflict(format!(
                    "{at}.source_document_id names no message {sender} sent"
                )));
            }
        },
        (None, None) => {
            return Err(invalid(
                at,
                "must name the message by message_id or source_document_id",
            ));
        }
    };
    let Some(stored) = store.message(&id).await? else {
        return Err(Refused::Conflict(format!(
            "{at}.message_id names no message: {id}"
        )));
    };
    if stored.canonical.is_empty() {
        return Err(Refused::Conflict(format!(
            "message {id} is past its retention: its body is no longer held"
        )));
    }
    let parsed = serde_json::from_str(&stored.canonical)
        .map_err(|e| crate::store::StoreError::Corrupt(format!("message {id}: {e}")))?;
    let message = match Document::from_value(parsed) {
        Ok(Document::Message(m)) => m,
        Ok(Document::Withdrawal(_)) => {
            return Err(Refused::Conflict(format!(
                "message {id} is a withdrawal: it cannot be corrected or withdrawn"
            )));
        }
        Err(e) => {
            return Err(crate::store::StoreError::Corrupt(format!(
                "message {id}: {}: {}",
                e.path, e.message
            ))
            .into());
        }
    };
    match acted_on_by(store, &stored).await? {
        Some((later, Act::Withdrawn)) => {
            return Err(Refused::Conflict(format!(
                "message {id} was withdrawn by message {}",
                later.id
            )));
        }
        Some((later, Act::Replaced)) => {
            return Err(Refused::Conflict(format!(
                "message {id} was replaced by message {}: correct or withdraw that one",
                later.id
            )));
        }
        None => {}
    }
    let mut holders: BTreeSet<String> = store
        .deliveries(&id)
        .await?
        .into_iter()
        .filter(|e| !is_withdrawal(e))
        .map(|e| e.recipient)
        .collect();
    holders.extend(
        stored
            .skipped
            .iter()
            .filter(|s| s.reason.starts_with(FLAGGED))
            .map(|s| s.recipient.clone()),
    );
    Ok(Original {
        stored,
        message,
        holders,
    })
}

/// What a later message did to an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Replaced,
    Withdrawn,
}

impl Act {
    pub fn as_str(self) -> &'static str {
        match self {
            Act::Replaced => "corrected",
            Act::Withdrawn => "withdrawn",
        }
    }
}

/// The later message of `stored`'s case that replaced or withdrew it, if one did. A case holds
/// few messages; only those that name `stored`'s id are parsed.
pub async fn acted_on_by(
    store: &Store,
    stored: &StoredMessage,
) -> Result<Option<(StoredMessage, Act)>, crate::store::StoreError> {
    let id = stored.id;
    let id_text = id.to_string();
    for later in store.case_messages(&stored.correlation_id).await? {
        if later.seq <= stored.seq || !later.canonical.contains(&id_text) {
            continue;
        }
        let Ok(v) = serde_json::from_str(&later.canonical) else {
            continue;
        };
        let act = match Document::from_value(v) {
            Ok(Document::Withdrawal(w)) if w.withdrawn.message_id == Some(id) => Act::Withdrawn,
            Ok(Document::Message(m))
                if m.replaces.as_ref().and_then(|r| r.message_id) == Some(id) =>
            {
                Act::Replaced
            }
            _ => continue,
        };
        return Ok(Some((later, act)));
    }
    Ok(None)
}

/// A correction must be of the type and the case of the message it replaces: per-case order
/// is what keeps it behind that message. A message sent in the wrong case is withdrawn and
/// sent anew instead.
pub fn check_same(correction: &Message, original: &Original) -> Result<(), Refused> {
    if correction.message_type() != original.message.message_type() {
        return Err(invalid(
            "type",
            format!(
                "must be the type of the message replaced ({})",
                original.message.message_type()
            ),
        ));
    }
    check_case(&correction.correlation_id, original)
}

/// A correction or withdrawal is in the case of the message it acts on.
pub fn check_case(correlation_id: &str, original: &Original) -> Result<(), Refused> {
    if correlation_id != original.stored.correlation_id {
        return Err(invalid(
            "correlation_id",
            "must be that of the message acted on; a message sent in the wrong case is \
             withdrawn (wrong-case) and sent anew",
        ));
    }
    Ok(())
}

/// What `recipient` is told of a correction: `routed` when the routing proposes it for the
/// correction, `may` when the policies in force let it hold the correction.
pub fn told(original: &Original, recipient: &str, routed: bool, may: bool) -> Option<Told> {
    let held = original.holders.contains(recipient);
    match (held, routed && may) {
        (true, true) => Some(Told::Correction),
        (true, false) => Some(Told::Withdrawal),
        (false, true) => Some(Told::New),
        (false, false) => None,
    }
}

/// Where a correction or withdrawal stands with one recipient.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecipientState {
    pub recipient: String,
    /// What its copy is: `message` (the correction, or the corrected message as new),
    /// `withdrawal`, or `flagged` (no copy: an operator tells it).
    pub copy: &'static str,
    /// The delivery's state (`queued`, `retrying`, `delivered`, `dead`), or `flagged`.
    pub status: String,
    /// Unix seconds.
    pub delivered_at: Option<i64>,
    /// Unix seconds: a pull recipient acknowledged it.
    pub acked_at: Option<i64>,
    /// Why it is flagged, or the last delivery error.
    pub detail: Option<String>,
}

/// A correction or withdrawal, recipient by recipient (`GET /admin/v1/rectifications`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rectification {
    pub id: Uuid,
    /// `correction` or `withdrawal`.
    pub kind: &'static str,
    /// The message it acts on.
    pub acts_on: Uuid,
    pub reason: &'static str,
    pub sender: String,
    pub received_at: String,
    pub recipients: Vec<RecipientState>,
    /// Some recipient has not yet got it (nor was it superseded there by a later one), or must
    /// be told by an operator.
    pub open: bool,
}

/// Whether `m` may be a correction or a withdrawal: a test on the stored record that needs no
/// parse, so that a listing reads no deliveries of the messages that are neither.
pub fn may_be_rectification(m: &StoredMessage) -> bool {
    m.message_type == WITHDRAWN || m.canonical.contains("\"replaces\"")
}

/// The rectification `m` is, with where it stands with each recipient; `None` for a message
/// that is neither a correction nor a withdrawal.
pub fn rectification(
    m: &StoredMessage,
    deliveries: &[crate::store::OutboxEntry],
) -> Option<Rectification> {
    if !may_be_rectification(m) {
        return None;
    }
    let (kind, acts_on, reason) =
        match Document::from_value(serde_json::from_str(&m.canonical).ok()?).ok()? {
            Document::Withdrawal(w) => (
                "withdrawal",
                w.withdrawn.message_id?,
                w.withdrawn.reason.as_str(),
            ),
            Document::Message(x) => {
                let r = x.replaces?;
                ("correction", r.message_id?, r.reason.as_str())
            }
        };
    let mut recipients: Vec<RecipientState> = deliveries
        .iter()
        .map(|e| RecipientState {
            recipient: e.recipient.clone(),
            copy: if is_withdrawal(e) {
                "withdrawal"
            } else {
                "message"
            },
            status: e.state.as_str().to_string(),
            delivered_at: e.delivered_at,
            acked_at: e.acked_at,
            detail: e.last_error.clone(),
        })
        .collect();
    recipients.extend(
        m.skipped
            .iter()
            .filter(|s| s.reason.starts_with(FLAGGED))
            .map(|s| RecipientState {
                recipient: s.recipient.clone(),
                copy: "flagged",
                status: if is_notified(&s.reason) {
                    "notified"
                } else {
                    "flagged"
                }
                .into(),
                delivered_at: None,
                acked_at: None,
                detail: Some(s.reason.clone()),
            }),
    );
    // done with a recipient: it has it, a later correction or withdrawal took its place, or an
    // operator told it by other means
    let done = [
        crate::store::DeliveryState::Delivered.as_str(),
        crate::store::DeliveryState::Superseded.as_str(),
        "notified",
    ];
    let open = recipients
        .iter()
        .any(|r| !done.contains(&r.status.as_str()));
    Some(Rectification {
        id: m.id,
        kind,
        acts_on,
        reason,
        sender: m.sender.clone(),
        received_at: m.received_at.clone(),
        recipients,
        open,
    })
}
