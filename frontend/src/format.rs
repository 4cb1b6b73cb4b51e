//! How times, durations and test paths read on screen.

use chrono::{DateTime, Utc};
use shared::EnvironmentState;
use wasm_bindgen::JsValue;

/// Milliseconds since the epoch, from the browser's clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A moment in the browser's time zone, `2024-05-01 14:03:07`.
pub fn local_time(at: &DateTime<Utc>) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at.timestamp_millis() as f64));
    // The Swedish locale writes ISO-like dates in local time.
    String::from(date.to_locale_string("sv-SE", &JsValue::UNDEFINED))
}

/// The same moment as an RFC 3339 UTC string, for tooltips and `<time>`.
pub fn utc_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A duration for people: `850 ms`, `12.4 s`, `3 min 05 s`, `2 h 07 min`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        // Integer arithmetic: float formatting would add kilobytes of wasm.
        return format!("{}.{} s", ms / 1000, (ms % 1000) / 100);
    }
    let secs = ms / 1000;
    if secs < 3600 {
        return format!("{} min {:02} s", secs / 60, secs % 60);
    }
    format!("{} h {:02} min", secs / 3600, (secs % 3600) / 60)
}

/// Time since `since`, as a running clock: `0:07`, `12:30`, `1:02:03`.
pub fn clock_since(since: &DateTime<Utc>) -> String {
    let secs = ((now_ms() - since.timestamp_millis() as f64) / 1000.0).max(0.0) as i64;
    if secs < 3600 {
        format!("{}:{:02}", secs / 60, secs % 60)
    } else {
        format!("{}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)
    }
}

/// The value of a `datetime-local` input (`2024-05-01T14:05`, the user's
/// own time) as a moment; `None` when it is empty or not a time.
pub fn from_local_input(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    // Without an offset, the browser reads a date and time as local.
    let ms = js_sys::Date::parse(value);
    if ms.is_nan() {
        None
    } else {
        from_ms(ms)
    }
}

/// An environment's state in one word, for people: `idle` reads `free`.
pub fn environment_state(state: EnvironmentState) -> &'static str {
    match state {
        EnvironmentState::Idle => "free",
        other => other.as_str(),
    }
}

/// A moment from milliseconds since the epoch (the browser's clock).
pub fn from_ms(ms: f64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms as i64)
}

/// A moment's local time of day, `14:05`, with the date in front when it
/// is not today: `2024-05-02 09:30`.
pub fn local_hm(at: &DateTime<Utc>) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at.timestamp_millis() as f64));
    let today = js_sys::Date::new_0();
    let hm = format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
    let day = |d: &js_sys::Date| (d.get_full_year(), d.get_month(), d.get_date());
    if day(&date) == day(&today) {
        hm
    } else {
        format!(
            "{}-{:02}-{:02} {hm}",
            date.get_full_year(),
            date.get_month() + 1,
            date.get_date()
        )
    }
}

/// How far ahead `at_ms` is from `now_ms`, roughly, for estimates: `any
/// moment`, `in ~3 min`, `in ~2 h 05 min`.
pub fn in_about(at_ms: f64, now_ms: f64) -> String {
    let secs = ((at_ms - now_ms) / 1000.0) as i64;
    if secs <= 30 {
        return "any moment".to_string();
    }
    let minutes = (secs + 30) / 60;
    if minutes < 60 {
        format!("in ~{minutes} min")
    } else {
        format!("in ~{} h {:02} min", minutes / 60, minutes % 60)
    }
}

/// `text` with every RFC 3339 time in it written by `write`: the
/// service's reasons (`held by alice until 2024-05-01T12:05:00+00:00`)
/// read in the user's own time.
pub fn times_in(text: &str, write: impl Fn(&DateTime<Utc>) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    for (index, word) in text.split(' ').enumerate() {
        if index > 0 {
            out.push(' ');
        }
        // A time may stand in brackets, or end a sentence or a clause.
        let head = word.len() - word.trim_start_matches('(').len();
        let bare = word[head..].trim_end_matches([',', ';', ')', '.']);
        match DateTime::parse_from_rfc3339(bare) {
            Ok(at) => {
                out.push_str(&word[..head]);
                out.push_str(&write(&at.with_timezone(&Utc)));
                out.push_str(&word[head + bare.len()..]);
            }
            Err(_) => out.push_str(word),
        }
    }
    out
}

/// A reason from the service with its times in local time of day.
pub fn local_reason(text: &str) -> String {
    times_in(text, local_hm)
}

/// `1 run`, `3 runs`.
pub fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What a run tests, in one short line.
pub fn paths_summary(paths: &[String]) -> String {
    match paths {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} +{} more", rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn durations_read_naturally() {
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_400), "12.4 s");
        assert_eq!(duration_ms(185_000), "3 min 05 s");
        assert_eq!(duration_ms(7_620_000), "2 h 07 min");
        assert_eq!(duration_ms(-3), "0 ms");
    }

    #[wasm_bindgen_test]
    fn estimates_are_rough_on_purpose() {
        let now = 1_000_000.0;
        assert_eq!(in_about(now - 5_000.0, now), "any moment");
        assert_eq!(in_about(now + 30_000.0, now), "any moment");
        assert_eq!(in_about(now + 50_000.0, now), "in ~1 min");
        assert_eq!(in_about(now + 170_000.0, now), "in ~3 min");
        assert_eq!(in_about(now + 7_500_000.0, now), "in ~2 h 05 min");
    }

    #[wasm_bindgen_test]
    fn times_in_a_reason_are_rewritten_and_the_rest_is_kept() {
        let utc = |at: &DateTime<Utc>| at.format("%H:%M").to_string();
        assert_eq!(
            times_in(
                "waiting: environment 7 is held by alice until 2024-05-01T12:05:31.5+00:00",
                utc
            ),
            "waiting: environment 7 is held by alice until 12:05"
        );
        assert_eq!(
            times_in(
                "back at 2024-05-01T14:00:00+02:00, then (2024-05-01T13:00:00Z).",
                utc
            ),
            "back at 12:00, then (13:00)."
        );
        assert_eq!(times_in("no  times here", utc), "no  times here");
    }

    #[wasm_bindgen_test]
    fn a_time_of_today_has_no_date() {
        let now = DateTime::<Utc>::from_timestamp_millis(now_ms() as i64).unwrap_or_default();
        assert_eq!(local_hm(&now).len(), 5);
        let long_ago = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
        assert!(local_hm(&long_ago).starts_with("19"));
    }

    #[wasm_bindgen_test]
    fn a_local_input_is_read_in_the_users_time() {
        let read = from_local_input("2024-05-01T14:05").map(|at| at.timestamp_millis() as f64);
        let expected = js_sys::Date::new_with_year_month_day_hr_min(2024, 4, 1, 14, 5).get_time();
        assert_eq!(read, Some(expected));
        assert_eq!(from_local_input("  "), None);
        assert_eq!(from_local_input("tomorrow-ish"), None);
    }

    #[wasm_bindgen_test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1, "run", "runs"), "1 run");
        assert_eq!(count(0, "run", "runs"), "0 runs");
    }

    #[wasm_bindgen_test]
    fn paths_are_summarised() {
        assert_eq!(paths_summary(&["a".into()]), "a");
        assert_eq!(
            paths_summary(&["a".into(), "b".into(), "c".into()]),
            "a +2 more"
        );
    }
}
