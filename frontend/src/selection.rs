//! Test selection on the new-run form (`-k` keyword, `-m` markers) and
//! artifact sizes on the run page: the small rules behind those fields.

/// The markers expression after picking `marker`: the marker alone on an
/// empty expression; else joined with `and`, the current expression kept
/// whole in parentheses when it has an `or` of its own (so that the pick
/// narrows all of it). A marker already named is left as it is.
pub fn add_marker(current: &str, marker: &str) -> String {
    let current = current.trim();
    if current.is_empty() {
        return marker.to_string();
    }
    let words: Vec<&str> = current
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    if words.contains(&marker) {
        return current.to_string();
    }
    if words.contains(&"or") {
        format!("({current}) and {marker}")
    } else {
        format!("{current} and {marker}")
    }
}

/// A byte count as people read it: `512 B`, `2.0 KiB`, `3.4 MiB`.
pub fn size(bytes: i64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.1} GiB", b / (KIB * KIB * KIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn picked_markers_narrow_the_whole_expression() {
        assert_eq!(add_marker("", "smoke"), "smoke");
        assert_eq!(add_marker("  ", "smoke"), "smoke");
        assert_eq!(add_marker("smoke", "checkout"), "smoke and checkout");
        assert_eq!(
            add_marker("smoke or slow", "checkout"),
            "(smoke or slow) and checkout"
        );
        assert_eq!(add_marker("not slow", "smoke"), "not slow and smoke");
        assert_eq!(add_marker("(smoke) and slow", "smoke"), "(smoke) and slow");
        // A marker whose name holds another's is a marker of its own.
        assert_eq!(add_marker("smoke_db", "smoke"), "smoke_db and smoke");
        for picked in [
            "smoke",
            "smoke and checkout",
            "(smoke or slow) and checkout",
        ] {
            assert!(shared::selection::expression(picked).is_ok(), "{picked}");
        }
    }

    #[wasm_bindgen_test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(size(50 * 1024 * 1024), "50.0 MiB");
    }
}
