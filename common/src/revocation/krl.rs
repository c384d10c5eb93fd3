//! OpenSSH binary key revocation lists (KRLs, made by `ssh-keygen -k`), read as described in
//! OpenSSH's PROTOCOL.krl:
//!
//! ```text
//! "SSHKRL\n\0" uint32 format_version(1) uint64 krl_version uint64 generated_date
//! uint64 flags string reserved string comment
//! then sections: byte type, string data
//!   1 CERTIFICATES: string ca_key (empty = any CA), string reserved,
//!       subsections: byte type, string data
//!       0x20 serial list (uint64...), 0x21 serial range (uint64 lo, uint64 hi),
//!       0x22 serial bitmap (uint64 offset, mpint bitmap), 0x23 key ids (string...),
//!       0x39 extension (string name, bool critical, string contents)
//!   2 EXPLICIT_KEY (string key_blob...), 3 FINGERPRINT_SHA1 (string sha1...),
//!   5 FINGERPRINT_SHA256 (string sha256...), 255 extension (as 0x39),
//!   4 SIGNATURE: string signing_key, string signature (not verified, only skipped; must be last)
//! ```
//!
//! Every read is bounds-checked; malformed input gives the byte offset where it went wrong.
//! As OpenSSH: unknown section types and unknown critical extensions are errors, unknown
//! non-critical extensions are skipped, serial 0 is never revoked by serial.

use std::collections::BTreeSet;

use russh::keys::ssh_key::public::KeyData;
use russh::keys::PublicKey;

/// The first eight bytes of every KRL.
pub const MAGIC: &[u8; 8] = b"SSHKRL\n\0";

const SECTION_CERTIFICATES: u8 = 1;
const SECTION_EXPLICIT_KEY: u8 = 2;
const SECTION_FINGERPRINT_SHA1: u8 = 3;
const SECTION_SIGNATURE: u8 = 4;
const SECTION_FINGERPRINT_SHA256: u8 = 5;
const SECTION_EXTENSION: u8 = 255;

const CERT_SERIAL_LIST: u8 = 0x20;
const CERT_SERIAL_RANGE: u8 = 0x21;
const CERT_SERIAL_BITMAP: u8 = 0x22;
const CERT_KEY_ID: u8 = 0x23;
const CERT_EXTENSION: u8 = 0x39;

/// OpenSSH's limit on an mpint (SSHBUF_MAX_BIGNUM + 1 bytes).
const MAX_BITMAP_BYTES: usize = 16384 + 1;

/// Where and why a KRL is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Byte offset from the start of the file.
    pub offset: usize,
    pub reason: String,
}

/// Certificates revoked for one CA (or for any CA when `ca` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertRevocations {
    pub ca: Option<KeyData>,
    /// Revoked serial ranges, inclusive, sorted and merged.
    pub serials: Vec<(u64, u64)>,
    pub key_ids: BTreeSet<String>,
}

impl CertRevocations {
    /// Whether `serial` is revoked (serial 0 never is: it is what a CA writes when it
    /// assigns none).
    pub fn serial_revoked(&self, serial: u64) -> bool {
        if serial == 0 {
            return false;
        }
        let i = self.serials.partition_point(|(lo, _)| *lo <= serial);
        i > 0 && self.serials.get(i - 1).is_some_and(|(_, hi)| serial <= *hi)
    }
}

/// A parsed KRL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Krl {
    pub krl_version: u64,
    pub generated_date: u64,
    pub comment: String,
    pub certs: Vec<CertRevocations>,
    /// Plain public key blobs.
    pub explicit_keys: BTreeSet<Vec<u8>>,
    pub sha1: BTreeSet<Vec<u8>>,
    pub sha256: BTreeSet<Vec<u8>>,
    /// Number of (skipped, unverified) signature sections.
    pub signatures: usize,
}

/// Bounds-checked reader over a slice that knows its offset in the whole file.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn err<T>(&self, reason: impl Into<String>) -> Result<T, Malformed> {
        Err(Malformed {
            offset: self.offset(),
            reason: reason.into(),
        })
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.data.get(self.pos..end)) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => self.err(format!(
                "truncated {what}: needs {n} bytes, {} left",
                self.data.len().saturating_sub(self.pos)
            )),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, Malformed> {
        Ok(self.bytes(1, what)?.first().copied().unwrap_or(0))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Malformed> {
        let b = self.bytes(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    fn u64(&mut self, what: &str) -> Result<u64, Malformed> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// An SSH string as a sub-reader whose offsets stay file-relative.
    fn sub(&mut self, what: &str) -> Result<Reader<'a>, Malformed> {
        let at = self.offset();
        let len = self.u32(&format!("length of {what}"))? as usize;
        let base = self.offset();
        let data = self.bytes(len, what).map_err(|mut e| {
            e.offset = at;
            e
        })?;
        Ok(Reader { data, pos: 0, base })
    }

    fn string(&mut self, what: &str) -> Result<&'a [u8], Malformed> {
        Ok(self.sub(what)?.data)
    }

    /// A string that must be text without NUL (OpenSSH's `sshbuf_get_cstring`).
    fn cstring(&mut self, what: &str) -> Result<String, Malformed> {
        let at = self.offset();
        let b = self.string(what)?;
        if b.contains(&0) {
            return Err(Malformed {
                offset: at,
                reason: format!("{what} contains a NUL byte"),
            });
        }
        Ok(String::from_utf8_lossy(b).into_owned())
    }
}

/// Parses a whole KRL file.
pub fn parse(data: &[u8]) -> Result<Krl, Malformed> {
    let mut r = Reader {
        data,
        pos: 0,
        base: 0,
    };
    if r.bytes(MAGIC.len(), "magic")? != MAGIC {
        return Err(Malformed {
            offset: 0,
            reason: "not a KRL (bad magic)".into(),
        });
    }
    let at = r.offset();
    let version = r.u32("format version")?;
    if version != 1 {
        return Err(Malformed {
            offset: at,
            reason: format!("unsupported KRL format version {version} (only 1 is known)"),
        });
    }
    let mut krl = Krl {
        krl_version: r.u64("krl_version")?,
        generated_date: r.u64("generated_date")?,
        ..Krl::default()
    };
    let _flags = r.u64("flags")?;
    r.string("reserved field")?;
    krl.comment = r.cstring("comment")?;
    while !r.is_empty() {
        let at = r.offset();
        let kind = r.u8("section type")?;
        if krl.signatures > 0 && kind != SECTION_SIGNATURE {
            return Err(Malformed {
                offset: at,
                reason: format!("section type {kind} after a signature section"),
            });
        }
        let mut sect = r.sub("section data")?;
        match kind {
            SECTION_CERTIFICATES => krl.certs.push(parse_certs(&mut sect)?),
            SECTION_EXPLICIT_KEY => blobs(&mut sect, &mut krl.explicit_keys, 0, "key blob")?,
            SECTION_FINGERPRINT_SHA1 => blobs(&mut sect, &mut krl.sha1, 20, "SHA1 hash")?,
            SECTION_FINGERPRINT_SHA256 => blobs(&mut sect, &mut krl.sha256, 32, "SHA256 hash")?,
            SECTION_SIGNATURE => {
                // The section "data" is the signing key; the signature follows as a second
                // string outside it.
                krl.signatures += 1;
                sect.pos = sect.data.len();
                r.string("signature")?;
            }
            SECTION_EXTENSION => extension(&mut sect, "KRL")?,
            other => {
                return Err(Malformed {
                    offset: at,
                    reason: format!("unsupported KRL section type {other}"),
                })
            }
        }
        if !sect.is_empty() {
            return sect.err(format!("unparsed data at the end of section type {kind}"));
        }
    }
    Ok(krl)
}

fn blobs(
    sect: &mut Reader<'_>,
    into: &mut BTreeSet<Vec<u8>>,
    expected_len: usize,
    what: &str,
) -> Result<(), Malformed> {
    while !sect.is_empty() {
        let at = sect.offset();
        let b = sect.string(what)?;
        if expected_len != 0 && b.len() != expected_len {
            return Err(Malformed {
                offset: at,
                reason: format!("{what} is {} bytes, expected {expected_len}", b.len()),
            });
        }
        into.insert(b.to_vec());
    }
    Ok(())
}

fn extension(sect: &mut Reader<'_>, level: &str) -> Result<(), Malformed> {
    let name = sect.cstring("extension name")?;
    let at = sect.offset();
    let critical = sect.u8("extension critical flag")? != 0;
    sect.string("extension contents")?;
    if critical {
        return Err(Malformed {
            offset: at,
            reason: format!("unsupported critical {level} extension {name:?}"),
        });
    }
    Ok(())
}

fn parse_certs(sect: &mut Reader<'_>) -> Result<CertRevocations, Malformed> {
    let at = sect.offset();
    let ca_blob = sect.string("CA key")?;
    let ca = if ca_blob.is_empty() {
        None
    } else {
        let key = PublicKey::from_bytes(ca_blob).map_err(|e| Malformed {
            offset: at,
            reason: format!("CA key does not decode: {e}"),
        })?;
        Some(key.key_data().clone())
    };
    sect.string("reserved field")?;
    let mut out = CertRevocations {
        ca,
        ..CertRevocations::default()
    };
    while !sect.is_empty() {
        let at = sect.offset();
        let kind = sect.u8("certificate subsection type")?;
        let mut sub = sect.sub("certificate subsection data")?;
        match kind {
            CERT_SERIAL_LIST => {
                while !sub.is_empty() {
                    let at = sub.offset();
                    let s = sub.u64("serial")?;
                    push_range(&mut out.serials, s, s, at)?;
                }
            }
            CERT_SERIAL_RANGE => {
                let at = sub.offset();
                let lo = sub.u64("serial_min")?;
                let hi = sub.u64("serial_max")?;
                push_range(&mut out.serials, lo, hi, at)?;
            }
            CERT_SERIAL_BITMAP => bitmap(&mut sub, &mut out.serials)?,
            CERT_KEY_ID => {
                while !sub.is_empty() {
                    out.key_ids.insert(sub.cstring("key id")?);
                }
            }
            CERT_EXTENSION => extension(&mut sub, "certificate section")?,
            other => {
                return Err(Malformed {
                    offset: at,
                    reason: format!("unsupported certificate subsection type {other:#04x}"),
                })
            }
        }
        if !sub.is_empty() {
            return sub.err(format!(
                "unparsed data at the end of certificate subsection {kind:#04x}"
            ));
        }
    }
    normalise(&mut out.serials);
    Ok(out)
}

fn push_range(v: &mut Vec<(u64, u64)>, lo: u64, hi: u64, at: usize) -> Result<(), Malformed> {
    if lo == 0 || lo > hi {
        return Err(Malformed {
            offset: at,
            reason: format!("invalid serial range {lo}-{hi} (serials start at 1, min <= max)"),
        });
    }
    v.push((lo, hi));
    Ok(())
}

/// `uint64 offset, mpint bitmap`: bit N (counting from the least significant bit of the
/// big-endian number) revokes serial offset + N.
fn bitmap(sub: &mut Reader<'_>, serials: &mut Vec<(u64, u64)>) -> Result<(), Malformed> {
    let offset = sub.u64("serial bitmap offset")?;
    let at = sub.offset();
    let raw = sub.string("serial bitmap")?;
    if raw.len() > MAX_BITMAP_BYTES {
        return Err(Malformed {
            offset: at,
            reason: format!("serial bitmap too large ({} bytes)", raw.len()),
        });
    }
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(Malformed {
            offset: at,
            reason: "serial bitmap is a negative mpint".into(),
        });
    }
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    let bytes = raw.get(start..).unwrap_or(&[]);
    let mut run: Option<(u64, u64)> = None;
    for (i, byte) in bytes.iter().rev().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) == 0 {
                continue;
            }
            let n = (i * 8 + bit) as u64;
            let Some(serial) = offset.checked_add(n) else {
                return Err(Malformed {
                    offset: at,
                    reason: "serial bitmap wraps past 2^64".into(),
                });
            };
            run = match run {
                Some((lo, hi)) if hi.checked_add(1) == Some(serial) => Some((lo, serial)),
                Some((lo, hi)) => {
                    push_range(serials, lo, hi, at)?;
                    Some((serial, serial))
                }
                None => Some((serial, serial)),
            };
        }
    }
    if let Some((lo, hi)) = run {
        push_range(serials, lo, hi, at)?;
    }
    Ok(())
}

/// Sorts and merges overlapping or adjacent ranges, so lookups can bisect.
fn normalise(v: &mut Vec<(u64, u64)>) {
    v.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for &(lo, hi) in v.iter() {
        match merged.last_mut() {
            Some((_, last_hi)) if lo <= last_hi.saturating_add(1) => {
                *last_hi = (*last_hi).max(hi);
            }
            _ => merged.push((lo, hi)),
        }
    }
    *v = merged;
}
