//! Platforms (`os/arch[/variant]`): parsing, normalisation of architecture and variant
//! spellings (x86_64 -> amd64, aarch64 -> arm64, arm64/v8 -> arm64, arm -> arm/v7), and
//! choosing the manifest for a platform from an index or manifest list.

use std::fmt;
use std::str::FromStr;

use super::error::{Error, Result};
use super::media::{Descriptor, Index, Kind, PlatformSpec, classify};

/// A normalised platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// Empty when the architecture has no variant.
    pub variant: String,
}

impl Platform {
    /// `linux/amd64`, the default platform.
    pub fn default_linux_amd64() -> Platform {
        Platform::new("linux", "amd64", "")
    }

    /// The platform this berthd runs on.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::new(std::env::consts::OS, arch, "")
    }

    /// Builds a platform, normalising architecture and variant spellings.
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        let os = os.to_ascii_lowercase();
        let (architecture, variant) = normalise_arch(
            &architecture.to_ascii_lowercase(),
            &variant.to_ascii_lowercase(),
        );
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = |why: &str| Error::InvalidPlatform {
            platform: s.to_string(),
            reason: why.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad("expected os/arch or os/arch/variant, like linux/amd64"));
        }
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !parts.iter().all(|p| ok(p)) {
            return Err(bad(
                "each part must be letters, digits, '_' or '-', like linux/arm64/v8",
            ));
        }
        Ok(Platform::new(
            parts[0],
            parts[1],
            parts.get(2).copied().unwrap_or(""),
        ))
    }

    /// The platform of an index entry or image config.
    pub fn from_spec(spec: &PlatformSpec) -> Platform {
        Platform::new(
            &spec.os,
            &spec.architecture,
            spec.variant.as_deref().unwrap_or(""),
        )
    }

    /// How well `other` runs here: `Some(rank)` (0 best) when it is compatible.
    /// An arm/v7 host also runs v6 and v5 images, ranked after exact matches.
    fn rank(&self, other: &Platform) -> Option<usize> {
        if self.os != other.os || self.architecture != other.architecture {
            return None;
        }
        if self.variant == other.variant {
            return Some(0);
        }
        if self.architecture == "arm" {
            const ORDER: [&str; 4] = ["v8", "v7", "v6", "v5"];
            let want = ORDER.iter().position(|v| *v == self.variant)?;
            let have = ORDER.iter().position(|v| *v == other.variant)?;
            return (have > want).then(|| have - want);
        }
        None
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Platform> {
        Platform::parse(s)
    }
}

fn normalise_arch(arch: &str, variant: &str) -> (String, String) {
    let (a, v) = match (arch, variant) {
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        ("i386" | "i686" | "386", v) => ("386", v),
        ("aarch64" | "arm64", "8" | "v8" | "") => ("arm64", ""),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", "") | ("arm", "") => ("arm", "v7"),
        ("armel", "") => ("arm", "v6"),
        ("arm", v @ ("5" | "6" | "7" | "8")) => return ("arm".into(), format!("v{v}")),
        (a, v) => (a, v),
    };
    (a.to_string(), v.to_string())
}

/// Chooses the manifest of `index` for `platform`: the best-ranked compatible entry, the
/// first one among equals. Entries that are not image manifests are skipped. `what` names
/// the index in the error when nothing matches.
pub fn select_manifest<'a>(
    index: &'a Index,
    platform: &Platform,
    what: &str,
) -> Result<&'a Descriptor> {
    let mut best: Option<(usize, &Descriptor)> = None;
    for d in &index.manifests {
        if !matches!(classify(&d.media_type), Ok(Kind::Manifest)) {
            continue;
        }
        let Some(spec) = &d.platform else { continue };
        if let Some(rank) = platform.rank(&Platform::from_spec(spec))
            && best.is_none_or(|(r, _)| rank < r)
        {
            best = Some((rank, d));
        }
    }
    best.map(|(_, d)| d).ok_or_else(|| {
        let available: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| Platform::from_spec(p).to_string())
            .collect();
        Error::NoMatchingPlatform {
            platform: platform.to_string(),
            reference: what.to_string(),
            available: if available.is_empty() {
                "no platforms".into()
            } else {
                available.join(", ")
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::digest::Digest;
    use crate::distribution::media::{OCI_INDEX, OCI_MANIFEST};

    #[test]
    fn parses_and_normalises() {
        let cases = [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("Linux/ARM64", "linux/arm64"),
            ("windows/amd64", "windows/amd64"),
        ];
        for (input, want) in cases {
            assert_eq!(Platform::parse(input).unwrap().to_string(), want, "{input}");
        }
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            let e = Platform::parse(bad).unwrap_err().to_string();
            assert!(e.contains("invalid platform"), "{bad}: {e}");
        }
    }

    fn entry(n: u8, os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        let mut d = Descriptor::of(OCI_MANIFEST, &[n]);
        d.platform = Some(PlatformSpec {
            architecture: arch.into(),
            os: os.into(),
            variant: variant.map(str::to_string),
            ..Default::default()
        });
        d
    }

    #[test]
    fn selects_from_an_index() {
        let mut attestation = entry(9, "unknown", "unknown", None);
        attestation.media_type = OCI_MANIFEST.into();
        let index = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![
                attestation,
                entry(1, "linux", "arm", Some("v6")),
                entry(2, "linux", "arm64", Some("v8")),
                entry(3, "linux", "amd64", None),
                entry(4, "linux", "arm", Some("v7")),
                entry(5, "windows", "amd64", None),
            ],
            annotations: Default::default(),
        };
        let pick = |p: &str| {
            select_manifest(&index, &Platform::parse(p).unwrap(), "x").map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/amd64").unwrap(), Digest::sha256_of(&[3]));
        assert_eq!(pick("linux/arm64").unwrap(), Digest::sha256_of(&[2]));
        assert_eq!(pick("linux/arm/v7").unwrap(), Digest::sha256_of(&[4]));
        assert_eq!(pick("linux/arm/v6").unwrap(), Digest::sha256_of(&[1]));
        assert_eq!(pick("linux/arm/v8").unwrap(), Digest::sha256_of(&[4]));
        let e = pick("linux/s390x").unwrap_err().to_string();
        assert!(
            e.contains("linux/s390x") && e.contains("linux/arm64"),
            "{e}"
        );
        assert!(pick("linux/arm/v5").is_err());
    }
}
