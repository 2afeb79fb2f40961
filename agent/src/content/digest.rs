//! Content digests (`sha256:<64 hex>`) and the running hash of a write.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The algorithm blobs are stored under (`blobs/sha256/<hex>`).
pub const ALGORITHM: &str = "sha256";

/// A validated content digest, `algorithm:hex`.
///
/// Parsing accepts the OCI-registered algorithms (sha256, sha384, sha512) so that
/// descriptors naming them can be stored; the content store itself hashes with sha256
/// only and refuses to verify other algorithms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses and validates a digest string.
    pub fn parse(s: &str) -> Result<Digest> {
        let invalid = |why: &str| Error::InvalidArgument(format!("digest {s:?} is invalid: {why}"));
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| invalid("expected <algorithm>:<hex>"))?;
        let want = match algo {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            "" => return Err(invalid("missing algorithm")),
            _ => return Err(invalid("unsupported algorithm")),
        };
        if hex.len() != want {
            return Err(invalid(&format!(
                "{algo} needs {want} hex characters, got {}",
                hex.len()
            )));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid("the hex part must be lower-case hexadecimal"));
        }
        Ok(Digest(s.to_string()))
    }

    /// The sha256 digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        let mut d = Digester::new();
        d.update(data);
        d.digest()
    }

    /// `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm part.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map(|(a, _)| a).unwrap_or_default()
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map(|(_, h)| h).unwrap_or_default()
    }

    /// Fails unless the digest is one the store can compute (sha256).
    pub fn require_storable(&self) -> Result<()> {
        if self.algorithm() != ALGORITHM {
            return Err(Error::InvalidArgument(format!(
                "digest {self}: berth stores and verifies {ALGORITHM} content only"
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Digest> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// The running sha256 of bytes written so far.
#[derive(Clone, Default)]
pub struct Digester(Sha256);

impl Digester {
    pub fn new() -> Self {
        Digester(Sha256::new())
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything written so far (the hasher keeps running).
    pub fn digest(&self) -> Digest {
        Digest(format!(
            "{ALGORITHM}:{}",
            hex::encode(self.0.clone().finalize())
        ))
    }

    pub fn reset(&mut self) {
        self.0 = Sha256::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_and_compute() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.hex().len(), 64);
        let mut g = Digester::new();
        g.update(b"ab");
        g.update(b"c");
        assert_eq!(g.digest(), Digest::of(b"abc"));
        g.reset();
        assert_eq!(g.digest().as_str(), EMPTY);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            &EMPTY.to_uppercase().replace("SHA256", "sha256"),
            &format!("{EMPTY}0"),
            ":abc",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("sha512:{}", "a".repeat(128));
        let d = Digest::parse(&long).unwrap();
        assert!(d.require_storable().is_err());
    }

    #[test]
    fn serde_validates() {
        let d: Digest = serde_json::from_str(&format!("\"{EMPTY}\"")).unwrap();
        assert_eq!(d.as_str(), EMPTY);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }
}
