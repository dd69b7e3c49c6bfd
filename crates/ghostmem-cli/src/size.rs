//! Byte sizes on the command line (`4096`, `64KiB`, `256M`, `1GiB`) and in reports.

/// Binary units accepted after a number, matched case-insensitively.
const UNITS: &[(&str, u32)] = &[
    ("", 0),
    ("b", 0),
    ("k", 10),
    ("kib", 10),
    ("m", 20),
    ("mib", 20),
    ("g", 30),
    ("gib", 30),
    ("t", 40),
    ("tib", 40),
];

/// Parse a size: a whole number of bytes, optionally followed by `K`/`KiB`, `M`/`MiB`,
/// `G`/`GiB` or `T`/`TiB` (powers of 1024, any letter case, optional space before the unit).
///
/// The error is one short sentence, so clap can print it on one line.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err("expected a size such as 4096, 64KiB, 256MiB or 1GiB".to_owned());
    }
    let unit = unit.trim_start();
    let Some(&(_, shift)) = UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
    else {
        return Err(format!(
            "unknown unit '{unit}': use bytes or K/KiB, M/MiB, G/GiB, T/TiB"
        ));
    };
    let too_large = || "size is too large".to_owned();
    let number: usize = digits.parse().map_err(|_| too_large())?;
    number
        .checked_mul(1usize.checked_shl(shift).ok_or_else(too_large)?)
        .ok_or_else(too_large)
}

/// [`parse_size`] that also rejects zero: the clap value parser for sizes.
pub fn parse_nonzero_size(text: &str) -> Result<usize, String> {
    match parse_size(text)? {
        0 => Err("size must be greater than zero".to_owned()),
        n => Ok(n),
    }
}

/// A byte count for people: `512 B`, `64.0 KiB`, `256.0 MiB`, `1.50 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNIT_NAMES: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss, reason = "a display value")]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNIT_NAMES.len() {
        value /= 1024.0;
        unit += 1;
    }
    let precision = if value < 10.0 { 2 } else { 1 };
    format!("{value:.precision$} {}", UNIT_NAMES[unit])
}

/// `usize` to `u64`, which never loses anything on the 32- and 64-bit targets Rust supports.
pub fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bytes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("  123 "), Ok(123));
        assert_eq!(parse_size("17B"), Ok(17));
    }

    #[test]
    fn binary_suffixes_any_case() {
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("64kib"), Ok(64 << 10));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("16 MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", "MiB", "-1", "1.5GiB", "12XB", "10 MB", "0x10", "1 2", "GiB1",
        ] {
            let err = parse_size(bad).expect_err(bad);
            assert!(!err.contains('\n'), "one-line error for {bad:?}: {err}");
        }
    }

    #[test]
    fn rejects_overflow() {
        assert!(parse_size("99999999999999999999999").is_err());
        assert!(parse_size("18446744073709551615G").is_err());
        assert!(parse_size("17179869184GiB").is_err());
    }

    #[test]
    fn nonzero() {
        assert!(parse_nonzero_size("0").is_err());
        assert!(parse_nonzero_size("0KiB").is_err());
        assert_eq!(parse_nonzero_size("1"), Ok(1));
    }

    #[test]
    fn formats() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.00 KiB");
        assert_eq!(format_bytes(256 << 20), "256.0 MiB");
        assert_eq!(format_bytes(3 << 29), "1.50 GiB");
    }
}
