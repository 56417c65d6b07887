//! Sizes in bytes, read exactly from Kubernetes quantities. kube_quantity parses the grammar;
//! its integer conversions truncate (`0.5Gi` to 0, and `100m` to nothing), which read as "no
//! limit" would fail open, so a size is taken from its exact value and refused unless it is a
//! whole number of bytes above zero.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube_quantity::ParsedQuantity;

/// Largest number of bytes read exactly: 2^53 (8 PiB), the largest a double holds to the byte.
const MAX_EXACT_BYTES: f64 = 9_007_199_254_740_992.0;

/// Why a quantity is not a whole number of bytes above zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotBytes {
    #[error("is not a quantity (a number and an optional suffix: Ki, Mi, Gi, Ti, k, M, G, T)")]
    Unreadable,
    #[error(
        "is not a whole number of bytes (`m` is a thousandth, not a mega: write M or Mi, and no fraction of a byte)"
    )]
    Fractional,
    #[error("is not above zero")]
    NotPositive,
    #[error("is above 8 PiB, more than any volume or export Hygie can count exactly")]
    TooLarge,
}

/// A quantity as a whole number of bytes above zero, exactly, or why not: never a truncation
/// (`0.5Gi` is 536870912 bytes, `100m` is refused, not read as none).
pub fn whole_bytes(quantity: &Quantity) -> Result<i64, NotBytes> {
    let bytes = ParsedQuantity::try_from(quantity)
        .ok()
        .and_then(|q| q.to_bytes_f64())
        .filter(|b| b.is_finite())
        .ok_or(NotBytes::Unreadable)?;
    if bytes <= 0.0 {
        return Err(NotBytes::NotPositive);
    }
    if bytes > MAX_EXACT_BYTES {
        return Err(NotBytes::TooLarge);
    }
    if bytes.fract() != 0.0 {
        return Err(NotBytes::Fractional);
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<i64, NotBytes> {
        whole_bytes(&Quantity(text.into()))
    }

    #[test]
    fn sizes_read_exactly() {
        assert_eq!(read("0.5Gi"), Ok(536_870_912));
        assert_eq!(read("1Mi"), Ok(1_048_576));
        assert_eq!(read("100M"), Ok(100_000_000));
        assert_eq!(read("1.5k"), Ok(1500));
        assert_eq!(read("42"), Ok(42));
    }

    #[test]
    fn what_would_have_read_as_no_limit_is_refused() {
        assert_eq!(read("100m"), Err(NotBytes::Fractional));
        assert_eq!(read("0.5"), Err(NotBytes::Fractional));
        assert_eq!(read("0"), Err(NotBytes::NotPositive));
        assert_eq!(read("0Gi"), Err(NotBytes::NotPositive));
        assert_eq!(read("-1Gi"), Err(NotBytes::NotPositive));
        assert_eq!(read("10Pi"), Err(NotBytes::TooLarge));
        assert_eq!(read("lots"), Err(NotBytes::Unreadable));
        assert_eq!(read(""), Err(NotBytes::Unreadable));
    }
}
