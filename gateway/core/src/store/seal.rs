//! Bodies at rest: every body a message record holds (its canonical form, each recipient's
//! copy, the sender's own signed submission) is compressed and then sealed with AES-256-GCM
//! under a key of its own message. The key is not part of the record: an engine keeps it apart
//! ([`super::MessageRec::key`]), where destroying it destroys it, so that erasing a message is
//! destroying one key, whatever copies of the sealed record the engine's files still hold (an
//! append-only log keeps old values until it compacts; the sealed bytes are useless without the
//! key).
//!
//! A sealed body starts with [`MAGIC`], which no body the gateway writes starts with (JSON, XML,
//! fixed-width records and compact JWS are text); a body without it was stored before bodies
//! were sealed and is read as it is. Each body is bound to its message and its place in the
//! record (the additional data), so that no sealed body can stand in for another.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

use super::StoreError;

/// How a sealed body begins: a zero byte (never the first byte of a text body) and the format.
pub const MAGIC: &[u8] = b"\0jxs1";

/// A message's body key: 256 random bits.
#[derive(Clone, PartialEq, Eq)]
pub struct BodyKey([u8; 32]);

impl std::fmt::Debug for BodyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyKey(..)")
    }
}

impl BodyKey {
    pub const LEN: usize = 32;

    /// A new key from the system's random source.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .expect("the system's random source answers");
        Self(k)
    }

    /// The key of 32 stored bytes; none where they are not 32 bytes or are all zero (a
    /// destroyed key's place, overwritten).
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let k: [u8; 32] = b.try_into().ok()?;
        (k != [0u8; 32]).then_some(Self(k))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("a 32-byte AES key"))
    }
}

impl Drop for BodyKey {
    fn drop(&mut self) {
        // not left in freed memory for longer than the key lives
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

fn aad(id: &Uuid, place: &str) -> Vec<u8> {
    let mut a = id.as_bytes().to_vec();
    a.extend_from_slice(place.as_bytes());
    a
}

/// Whether `stored` is a sealed body.
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC)
}

/// `plain` compressed and sealed under `key`, bound to message `id` and `place` (`canonical`,
/// `copy:<recipient>`, `sender-signature`). An empty body stays empty.
pub fn seal(key: &BodyKey, id: &Uuid, place: &str, plain: &[u8]) -> Vec<u8> {
    if plain.is_empty() {
        return Vec::new();
    }
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .expect("the system's random source answers");
    let mut body = lz4_flex::compress_prepend_size(plain);
    key.aead()
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(id, place)),
            &mut body,
        )
        .expect("a body within AES-GCM's length");
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    out
}

/// What a stored body holds: the body; nothing where it was sealed and its key is destroyed
/// (erased); a body stored before bodies were sealed, as it is. A sealed body its key does not
/// open is corrupt.
pub fn open(
    key: Option<&BodyKey>,
    id: &Uuid,
    place: &str,
    stored: &[u8],
) -> Result<Vec<u8>, StoreError> {
    if !is_sealed(stored) {
        return Ok(stored.to_vec());
    }
    let Some(key) = key else {
        return Ok(Vec::new());
    };
    let corrupt = || StoreError::Corrupt(format!("message {id}: its {place} does not open"));
    let rest = &stored[MAGIC.len()..];
    if rest.len() < NONCE_LEN {
        return Err(corrupt());
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
    let mut body = sealed.to_vec();
    let plain = key
        .aead()
        .open_in_place(nonce, Aad::from(aad(id, place)), &mut body)
        .map_err(|_| corrupt())?;
    lz4_flex::decompress_size_prepended(plain).map_err(|_| corrupt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_body_opens_with_its_key_alone() {
        let id = Uuid::now_v7();
        let key = BodyKey::generate();
        let body = br#"{"person":{"name":"Distinctive Name"}}"#.repeat(20);
        let sealed = seal(&key, &id, "canonical", &body);
        assert!(is_sealed(&sealed));
        assert!(
            !sealed
                .windows(b"Distinctive".len())
                .any(|w| w == b"Distinctive")
        );
        assert_eq!(open(Some(&key), &id, "canonical", &sealed).unwrap(), body);
        // without its key, nothing
        assert!(open(None, &id, "canonical", &sealed).unwrap().is_empty());
        // another key, another message, another place: corrupt, never another body
        let other = BodyKey::generate();
        assert!(open(Some(&other), &id, "canonical", &sealed).is_err());
        assert!(open(Some(&key), &Uuid::now_v7(), "canonical", &sealed).is_err());
        assert!(open(Some(&key), &id, "copy:courts", &sealed).is_err());
        // a body stored before sealing reads as it is
        assert_eq!(open(None, &id, "canonical", b"{}").unwrap(), b"{}");
        assert!(seal(&key, &id, "canonical", b"").is_empty());
    }

    #[test]
    fn a_destroyed_key_reads_as_none() {
        assert!(BodyKey::from_bytes(&[0u8; 32]).is_none());
        assert!(BodyKey::from_bytes(&[1u8; 31]).is_none());
        let k = BodyKey::generate();
        assert_eq!(BodyKey::from_bytes(k.as_bytes()), Some(k));
    }
}
