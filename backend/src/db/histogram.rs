//! The histograms of durations that `test_period_stats` keeps beside the
//! durations themselves (see the migration `duration_histograms`): which
//! bucket a duration falls in, and where a median falls among buckets.

use std::ops::Range;

/// Buckets per doubling above the exact ones: a bucket is at most 1/8 of
/// its lower bound wide.
const PER_DOUBLING_BITS: u32 = 3;
/// Every millisecond below this has a bucket of its own.
const EXACT_BELOW: i32 = 2 << PER_DOUBLING_BITS;
/// How many buckets there are, from 0 ms to `i32::MAX`.
pub const BUCKETS: usize = bucket_of(i32::MAX) + 1;

/// The bucket of a duration, as the SQL function `duration_bucket` has it.
/// A negative duration counts in bucket 0.
pub const fn bucket_of(ms: i32) -> usize {
    if ms < EXACT_BELOW {
        return if ms < 0 { 0 } else { ms as usize };
    }
    let shift = (31 - ms.leading_zeros()) - PER_DOUBLING_BITS;
    ((shift << PER_DOUBLING_BITS) + (ms as u32 >> shift)) as usize
}

/// The durations that fall in a bucket: from its lower bound (bucket 0
/// also holds the negative ones) to its upper bound, excluded.
pub fn bounds(bucket: usize) -> Range<i64> {
    if bucket < EXACT_BELOW as usize {
        let low = if bucket == 0 { i64::MIN } else { bucket as i64 };
        return low..bucket as i64 + 1;
    }
    let shift = (bucket >> PER_DOUBLING_BITS) as u32 - 1;
    let mantissa = (bucket - ((shift as usize) << PER_DOUBLING_BITS)) as i64;
    (mantissa << shift)..((mantissa + 1) << shift)
}

/// One test's counts per bucket over a window, added up from the rows'
/// histograms and from durations one by one.
pub struct Histogram {
    counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
        }
    }
}

impl Histogram {
    /// Adds histograms as the database keeps them, one after the other:
    /// entries of a bucket's number as one byte and a count as a 4-byte
    /// big-endian integer (a bucket's entries add up).
    pub fn add_encoded(&mut self, encoded: &[u8]) {
        for entry in encoded.chunks_exact(5) {
            let bucket = usize::from(entry[0]);
            let count = u32::from_be_bytes([entry[1], entry[2], entry[3], entry[4]]);
            if let Some(slot) = self.counts.get_mut(bucket) {
                *slot += u64::from(count);
            }
        }
    }

    pub fn add(&mut self, ms: i32) {
        self.counts[bucket_of(ms)] += 1;
    }

    /// The bucket that holds the lower median of the durations counted:
    /// the one where the `(n - 1) / 2`-th of them in order (from 0) falls.
    /// `None` when none was counted.
    pub fn median_bounds(&self) -> Option<Range<i64>> {
        let total: u64 = self.counts.iter().sum();
        let wanted = total.checked_sub(1)? / 2;
        let mut below = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            below += count;
            if below > wanted {
                return Some(bounds(bucket));
            }
        }
        None
    }

    /// Forgets every count, to be used for the next test.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_each_holds_its_bounds() {
        assert_eq!(BUCKETS, 232);
        let mut next_low = 0;
        for bucket in 0..BUCKETS {
            let range = bounds(bucket);
            if bucket > 0 {
                assert_eq!(range.start, next_low, "bucket {bucket}");
                assert_eq!(bucket_of(range.start as i32), bucket);
                // At most 1/8 of its lower bound wide above the exact ones.
                assert!(range.end - range.start <= (range.start / 8).max(1));
            }
            assert_eq!(bucket_of((range.end - 1) as i32), bucket);
            next_low = range.end;
        }
        assert_eq!(next_low, i64::from(i32::MAX) + 1);
        assert_eq!(bucket_of(-7), 0);
        assert!(bounds(0).contains(&-7));
    }

    #[test]
    fn known_buckets_match_the_sql_function() {
        // Values duration_bucket() answers (checked against it).
        for (ms, bucket) in [
            (0, 0),
            (15, 15),
            (16, 16),
            (17, 16),
            (18, 17),
            (31, 23),
            (32, 24),
            (33, 24),
            (36, 25),
            (511, 55),
            (512, 56),
            (575, 56),
            (576, 57),
            (1023, 63),
            (1024, 64),
            (i32::MAX, 231),
        ] {
            assert_eq!(bucket_of(ms), bucket, "{ms} ms");
        }
    }

    #[test]
    fn the_median_bucket_holds_the_lower_median() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut histogram = Histogram::default();
        assert_eq!(histogram.median_bounds(), None);
        for len in 1..200_usize {
            let spread = [3, 700, 100_000, i32::MAX as u64][len % 4];
            let mut values: Vec<i32> = (0..len).map(|_| (next() % spread) as i32).collect();
            histogram.clear();
            // Half of them encoded as the database sends them.
            let (encoded, single) = values.split_at(len / 2);
            let mut bytes = Vec::new();
            for ms in encoded {
                bytes.push(bucket_of(*ms) as u8);
                bytes.extend(1_u32.to_be_bytes());
            }
            histogram.add_encoded(&bytes);
            single.iter().for_each(|ms| histogram.add(*ms));
            let median = shared::stats::median(&mut values).unwrap();
            let range = histogram.median_bounds().unwrap();
            assert!(
                range.contains(&i64::from(median)),
                "{len}: {median} in {range:?}"
            );
        }
    }
}
