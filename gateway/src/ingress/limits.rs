//! Per-authority rate limits: a token bucket each, refilled at `rate_per_second` up to `burst`.

use std::sync::Mutex;
use std::time::Instant;

use crate::config::Config;
use crate::ingress::identity::AuthorityId;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    rate: f64,
    burst: f64,
}

/// The buckets of every registered authority.
#[derive(Debug)]
pub struct RateLimits {
    /// One bucket per registered authority, at its registry index.
    buckets: Vec<Mutex<Bucket>>,
}

impl RateLimits {
    /// The buckets of `config`'s authorities, in the order the registry numbers them.
    pub fn new(config: &Config) -> Self {
        let now = Instant::now();
        let buckets = config
            .authorities
            .iter()
            .map(|a| {
                let burst = f64::from(a.burst);
                Mutex::new(Bucket {
                    tokens: burst,
                    at: now,
                    rate: a.rate_per_second,
                    burst,
                })
            })
            .collect();
        Self { buckets }
    }

    /// Takes one token for `who`; `Err(seconds)` until the next one when there is none.
    pub fn take(&self, who: &AuthorityId) -> Result<(), u64> {
        let Some(bucket) = self.buckets.get(who.index()) else {
            return Ok(());
        };
        let Ok(mut b) = bucket.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * b.rate).min(b.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / b.rate).ceil().max(1.0) as u64)
        }
    }
}

/// Where a JSON body passes a limit: the JSON pointer of the place and what it passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLimit {
    pub pointer: String,
    pub message: String,
}

/// Checks the nesting depth and string lengths of a JSON text in one pass over its bytes,
/// before any decoder builds anything. Not a validator: what is not JSON is left to the decoder.
pub fn check_json(body: &[u8], max_depth: usize, max_string: usize) -> Result<(), JsonLimit> {
    struct Frame {
        array: bool,
        key: String,
        index: usize,
        expecting_key: bool,
    }
    fn pointer(stack: &[Frame]) -> String {
        stack
            .iter()
            .map(|f| {
                if f.array {
                    format!("/{}", f.index)
                } else {
                    format!("/{}", f.key.replace('~', "~0").replace('/', "~1"))
                }
            })
            .collect()
    }
    let mut stack: Vec<Frame> = Vec::new();
    let (mut in_string, mut escaped, mut start, mut is_key) = (false, false, 0, false);
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if is_key {
                    if let Some(top) = stack.last_mut() {
                        top.key = String::from_utf8_lossy(&body[start..i]).into_owned();
                    }
                }
            }
            if in_string && i + 1 - start > max_string {
                // a member name is named by the object that holds it
                let at = if is_key {
                    format!("{} (a member name)", pointer(&stack[..stack.len() - 1]))
                } else {
                    pointer(&stack)
                };
                return Err(JsonLimit {
                    pointer: at,
                    message: format!("a string longer than the limit of {max_string} bytes"),
                });
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                start = i + 1;
                is_key = stack.last().is_some_and(|f| !f.array && f.expecting_key);
            }
            b'{' | b'[' => {
                stack.push(Frame {
                    array: b == b'[',
                    key: String::new(),
                    index: 0,
                    expecting_key: b == b'{',
                });
                if stack.len() > max_depth {
                    stack.pop();
                    return Err(JsonLimit {
                        pointer: pointer(&stack),
                        message: format!("nesting deeper than the limit of {max_depth}"),
                    });
                }
            }
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(top) = stack.last_mut() {
                    top.expecting_key = false;
                }
            }
            b',' => {
                if let Some(top) = stack.last_mut() {
                    if top.array {
                        top.index += 1;
                    } else {
                        top.expecting_key = true;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn depth_and_strings_within_the_limits_pass() {
        assert_eq!(
            check_json(br#"{"a":[1,{"b":"xyz"}],"c":"\"\\"}"#, 3, 4),
            Ok(())
        );
    }

    #[test]
    fn too_deep_names_where() {
        let e = check_json(br#"{"a":[1,{"b":[[1]]}]}"#, 4, 100).unwrap_err();
        assert_eq!(e.pointer, "/a/1/b/0");
        assert!(e.message.contains("limit of 4"));
    }

    #[test]
    fn a_long_value_or_name_names_where_never_what() {
        let e = check_json(br#"{"a":{"list":["ok","0123456789"]}}"#, 10, 5).unwrap_err();
        assert_eq!(e.pointer, "/a/list/1");
        assert!(!e.message.contains("0123"));
        let e = check_json(br#"{"a~b/c":{"verylongname":1}}"#, 10, 8).unwrap_err();
        assert_eq!(e.pointer, "/a~0b~1c (a member name)");
        // escapes count as sent; a quote inside a string does not end it
        assert_eq!(check_json(br#"{"a":"\"\"\""}"#, 10, 6), Ok(()));
        assert!(check_json(br#"{"a":"\"\"\"\""}"#, 10, 6).is_err());
    }
}
