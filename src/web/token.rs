//! One-time tokens: 256 random bits, sent as 64 hex digits, kept only as
//! their SHA-256. Whoever reads the table cannot use what is in it, and a
//! token is found by its hash, so no comparison of secrets happens in code.

use sha2::{Digest, Sha256};

/// A fresh token and the hash to store.
pub struct OneTimeToken {
    /// What travels (in a link): 64 lower-case hex digits.
    pub token: String,
    /// SHA-256 of `token`, what the database keeps.
    pub hash: Vec<u8>,
}

impl OneTimeToken {
    pub fn new() -> OneTimeToken {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source works");
        let token = super::hex(&bytes);
        let hash = Sha256::digest(token.as_bytes()).to_vec();
        OneTimeToken { token, hash }
    }
}

impl Default for OneTimeToken {
    fn default() -> Self {
        Self::new()
    }
}

/// The hash to look `given` up by, if it has a token's form at all
/// (anything else cannot be one, and costs no query).
pub fn hash_of(given: &str) -> Option<Vec<u8>> {
    let well_formed = given.len() == 64
        && given
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    well_formed.then(|| Sha256::digest(given.as_bytes()).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_found_by_their_hash() {
        let a = OneTimeToken::new();
        let b = OneTimeToken::new();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 64);
        assert_eq!(hash_of(&a.token), Some(a.hash.clone()));
        assert_ne!(a.hash, b.hash);
        for bad in ["", "abc", &a.token.to_uppercase(), &format!("{}0", a.token)] {
            assert_eq!(hash_of(bad), None, "{bad:?}");
        }
    }
}
