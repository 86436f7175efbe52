//! The multipart part-size schedule: small parts for small files, growing so that a 5 TiB object
//! fits in S3's 10,000 parts.
//!
//! Part `n` (counting from 0) is `MIN_PART * (1 + n / PARTS_PER_STEP)` bytes: 5 MiB for the first
//! 47 parts, 10 MiB for the next 47, and so on. After 10,000 parts the sum is just over 5 TiB (the
//! largest object S3 stores) and the largest part is 1065 MiB (S3 allows 5 GiB). An upload holds at
//! most two parts in memory (see [`crate::s3`]), so its memory grows with the square root of its
//! size: 10 MiB for files up to 235 MiB, 40 MiB at 1 GiB, about 300 MiB at 100 GiB.

/// Smallest part S3 accepts (except the last one).
pub(crate) const MIN_PART: u64 = 5 * 1024 * 1024;
/// Parts uploaded before the part size grows by another [`MIN_PART`].
pub(crate) const PARTS_PER_STEP: u64 = 47;
/// S3's limit on the number of parts of one upload.
#[cfg(test)]
pub(crate) const MAX_PARTS: u64 = 10_000;
/// S3's largest object (5 TiB).
pub(crate) const MAX_OBJECT: u64 = 5 * 1024 * 1024 * 1024 * 1024;

/// Size of part `n` (0-based).
pub(crate) fn part_size(n: u64) -> u64 {
    MIN_PART * (1 + n / PARTS_PER_STEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_parts_hold_five_tib_within_s3_part_limits() {
        let total: u64 = (0..MAX_PARTS).map(part_size).sum();
        assert!(total >= MAX_OBJECT, "{total} < {MAX_OBJECT}");
        let largest = part_size(MAX_PARTS - 1);
        assert!(largest <= 5 * 1024 * 1024 * 1024, "largest part {largest}");
        assert_eq!(largest, 213 * MIN_PART);
    }

    #[test]
    fn small_files_use_the_smallest_parts() {
        assert_eq!(part_size(0), MIN_PART);
        assert_eq!(part_size(46), MIN_PART);
        assert_eq!(part_size(47), 2 * MIN_PART);
        // A 1 GiB upload never needs parts over 20 MiB (two in memory: 40 MiB).
        let mut sum = 0;
        let mut n = 0;
        while sum < 1024 * 1024 * 1024 {
            sum += part_size(n);
            n += 1;
        }
        assert!(part_size(n) <= 4 * MIN_PART, "part {n}: {}", part_size(n));
    }
}
