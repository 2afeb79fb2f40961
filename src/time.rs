//! Timestamps on the wire.
//!
//! containerd's Go clients always send their (non-nullable) timestamps; an unset one
//! arrives as Go's zero time, 0001-01-01T00:00:00Z. These helpers treat that value and
//! an absent field alike as "unset", and never invent 1970-01-01.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

/// Seconds of Go's zero time (0001-01-01T00:00:00Z) relative to the Unix epoch.
pub const GO_ZERO_SECONDS: i64 = -62_135_596_800;

/// True when a timestamp is absent or Go's zero time.
pub fn is_unset(ts: Option<&Timestamp>) -> bool {
    match ts {
        None => true,
        Some(t) => t.seconds == GO_ZERO_SECONDS && t.nanos == 0,
    }
}

/// Converts a wire timestamp into a `SystemTime`, `None` when unset.
pub fn to_system(ts: Option<&Timestamp>) -> Option<SystemTime> {
    if is_unset(ts) {
        return None;
    }
    let t = ts?;
    let nanos = u32::try_from(t.nanos.clamp(0, 999_999_999)).unwrap_or(0);
    if t.seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(t.seconds.unsigned_abs(), nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(t.seconds.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

/// Converts a `SystemTime` into a wire timestamp.
pub fn from_system(t: SystemTime) -> Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        },
        Err(e) => {
            let d = e.duration();
            let mut seconds = -(d.as_secs() as i64);
            let mut nanos = d.subsec_nanos() as i32;
            if nanos > 0 {
                seconds -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            Timestamp { seconds, nanos }
        }
    }
}

/// The current time as a wire timestamp.
pub fn now() -> Timestamp {
    from_system(SystemTime::now())
}

/// Nanoseconds since the Unix epoch, the compact form berth stores.
pub fn to_unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// A wire timestamp from nanoseconds since the Unix epoch.
pub fn from_unix_nanos(nanos: i64) -> Timestamp {
    Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// Nanoseconds since the Unix epoch from a wire timestamp, `None` when unset.
pub fn wire_to_unix_nanos(ts: Option<&Timestamp>) -> Option<i64> {
    if is_unset(ts) {
        return None;
    }
    let t = ts?;
    Some(
        t.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(t.nanos)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_zero_time_is_unset() {
        let zero = Timestamp {
            seconds: GO_ZERO_SECONDS,
            nanos: 0,
        };
        assert!(is_unset(Some(&zero)));
        assert!(is_unset(None));
        assert!(!is_unset(Some(&Timestamp {
            seconds: 0,
            nanos: 0
        })));
        assert_eq!(to_system(Some(&zero)), None);
    }

    #[test]
    fn round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let w = from_system(t);
        assert_eq!(to_system(Some(&w)), Some(t));
        let n = to_unix_nanos(t);
        assert_eq!(from_unix_nanos(n), w);
        assert_eq!(wire_to_unix_nanos(Some(&w)), Some(n));
    }

    #[test]
    fn before_epoch() {
        let t = UNIX_EPOCH - Duration::new(1, 250_000_000);
        let w = from_system(t);
        assert_eq!(
            w,
            Timestamp {
                seconds: -2,
                nanos: 750_000_000
            }
        );
        assert_eq!(to_system(Some(&w)), Some(t));
        assert_eq!(from_unix_nanos(to_unix_nanos(t)), w);
    }
}
