//! How times, durations and test paths read on screen.

use chrono::{DateTime, Utc};
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
    fn paths_are_summarised() {
        assert_eq!(paths_summary(&["a".into()]), "a");
        assert_eq!(
            paths_summary(&["a".into(), "b".into(), "c".into()]),
            "a +2 more"
        );
    }
}
