use jxg_schema::{MessageType, Violations};

/// Why a document could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Not well-formed for its format (not JSON, wrong record layout, …): HTTP 400.
    #[error("malformed: {message}")]
    Malformed {
        /// What is wrong and where (line and column for text formats).
        message: String,
    },
    /// Not well-formed for its format, with the place of the fault: a flat record set off the
    /// layout (`record 3 (FO) field record length`), a JSON member name repeated in its object
    /// (`/personer/0/cpr`): HTTP 400.
    #[error("not well-formed: {0}")]
    Layout(Violations),
    /// In a text encoding the format does not take: HTTP 415.
    #[error("unsupported encoding: {message}")]
    Encoding {
        /// Which encoding, and which are taken.
        message: String,
    },
    /// Well-formed but breaking the format's rules: HTTP 422, every violation with its path.
    #[error("invalid: {0}")]
    Invalid(Violations),
}

/// A failed decode, with the document type when it could be read, so that the gateway can refuse
/// a type the sender may not send (403) before it reports the document's other faults (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rejection}")]
pub struct DecodeError {
    pub message_type: Option<MessageType>,
    pub rejection: Rejection,
}

impl DecodeError {
    pub fn malformed(message: impl Into<String>) -> Self {
        Self {
            message_type: None,
            rejection: Rejection::Malformed {
                message: message.into(),
            },
        }
    }
    pub fn invalid(message_type: Option<MessageType>, v: Violations) -> Self {
        Self {
            message_type,
            rejection: Rejection::Invalid(v),
        }
    }
}

/// Why a canonical message could not be written in a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The format has no place for something this message must carry.
    #[error("{format} cannot carry {what}")]
    CannotCarry { format: &'static str, what: String },
}
