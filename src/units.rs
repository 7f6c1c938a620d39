//! Units: the small vocabulary every stage shares. Times are integer nanoseconds since the
//! Unix epoch (`i64`) from the reader to the renderers; only [`ms`] and [`utc`] turn them
//! into text. An address is an [`Endpoint`], a connection's addresses a [`Tuple`].

use serde::{Serialize, Serializer, ser::SerializeTuple};
use std::fmt;
use std::net::IpAddr;

/// Declares a closed vocabulary: an enum whose variants each carry a stable snake_case
/// code (JSON, CSV, `pcapdiag explain`) and a one-line text for humans. It gets `ALL` (in
/// declaration order), `code()`, `text()`, `from_code()`, and serializes as its code.
macro_rules! codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = ($code:literal, $text:literal), )*
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($code),*].len()] = [$($name::$variant),*];

            /// Stable snake_case code.
            pub fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            /// One line for humans.
            pub fn text(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn from_code(code: &str) -> Option<$name> {
                $name::ALL.into_iter().find(|v| v.code() == code)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }
    };
}
pub(crate) use codes;

pub const NS_PER_US: i64 = 1_000;
pub const NS_PER_MS: i64 = 1_000_000;
pub const NS_PER_S: i64 = 1_000_000_000;

/// An address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// A TCP 4-tuple, originator (the client) first. Displayed `client -> server`; serialized
/// as the two-element array `[client, server]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tuple {
    pub client: Endpoint,
    pub server: Endpoint,
}

impl Tuple {
    pub fn new(client: Endpoint, server: Endpoint) -> Tuple {
        Tuple { client, server }
    }

    /// The same connection seen from the other end.
    pub fn reverse(self) -> Tuple {
        Tuple {
            client: self.server,
            server: self.client,
        }
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.client, self.server)
    }
}

impl Serialize for Tuple {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.client)?;
        t.serialize_element(&self.server)?;
        t.end()
    }
}

/// A capture file's name without its directory, `.gz` and capture extension (`.pcapng`,
/// `.pcap`, or a rotation's `.pcapN`, in any case): `node` for `captures/node.pcap.gz`. A
/// name that is only an extension (`.pcap`) is kept.
pub fn capture_stem(file: &str) -> &str {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let plain = name.strip_suffix(".gz").unwrap_or(name);
    let is_capture_ext = |ext: &str| {
        ext.eq_ignore_ascii_case("pcapng")
            || ext.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("pcap"))
                && ext[4..].bytes().all(|b| b.is_ascii_digit())
    };
    match plain.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && is_capture_ext(ext) => stem,
        _ => plain,
    }
}

/// Nanoseconds as milliseconds with three decimals, for humans.
pub fn ms(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    let per_ms = NS_PER_MS as u64;
    format!(
        "{sign}{}.{:03} ms",
        ns / per_ms,
        (ns % per_ms) / NS_PER_US as u64
    )
}

/// Nanoseconds since the epoch as UTC ISO-8601 with nanoseconds.
pub fn utc(ts: i64) -> String {
    let secs = ts.div_euclid(NS_PER_S);
    let nanos = ts.rem_euclid(NS_PER_S);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn test_stem_drops_gz_and_capture_extensions_only() {
        for (path, want) in [
            ("d/rs_timewait.client.pcap", "rs_timewait.client"),
            ("x.pcapng.gz", "x"),
            ("x.pcap12", "x"),
            ("x.pcap3.gz", "x"),
            ("x.PCAP", "x"),
            ("x.cap", "x.cap"),
            ("trace", "trace"),
            (".pcap", ".pcap"),
        ] {
            assert_eq!(capture_stem(path), want, "{path}");
        }
    }

    #[test]
    fn test_utc_and_ms() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            utc(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            utc(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(ms(1_008_123_999), "1008.123 ms");
        assert_eq!(ms(-2_500_000), "-2.500 ms");
    }

    #[test]
    fn test_tuple_display_reverse_and_json() {
        let c = Endpoint {
            ip: "10.0.0.1".parse().unwrap(),
            port: 51865,
        };
        let s = Endpoint {
            ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
            port: 80,
        };
        let t = Tuple::new(c, s);
        assert_eq!(t.to_string(), "10.0.0.1:51865 -> [::1]:80");
        assert_eq!(t.reverse().to_string(), "[::1]:80 -> 10.0.0.1:51865");
        assert_eq!(t.reverse().reverse(), t);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"[{"ip":"10.0.0.1","port":51865},{"ip":"::1","port":80}]"#
        );
    }
}
