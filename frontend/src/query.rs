//! Values of the URL's query string. Read by hand: the router's typed
//! query goes through a form decoder and a hash map of strings, which cost
//! the wasm more than this.

/// The value of `name` in `query` (`?a=1&b=x+y`), percent- and
/// plus-decoded; the last one when it is given twice, as a form decoder
/// would.
pub fn param(query: &str, name: &str) -> Option<String> {
    query
        .trim_start_matches('?')
        .split('&')
        .rev()
        .find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key)? == name).then(|| decode(value))?
        })
}

fn decode(raw: &str) -> Option<String> {
    js_sys::decode_uri_component(&raw.replace('+', " "))
        .ok()
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn values_are_found_and_decoded() {
        let query = "?status=failed&username=ann+b%C3%B6&page=2&page=3&empty=&flag";
        assert_eq!(param(query, "status").as_deref(), Some("failed"));
        assert_eq!(param(query, "username").as_deref(), Some("ann bö"));
        assert_eq!(param(query, "page").as_deref(), Some("3"));
        assert_eq!(param(query, "empty").as_deref(), Some(""));
        assert_eq!(param(query, "flag").as_deref(), Some(""));
        assert_eq!(param(query, "missing"), None);
        assert_eq!(param("", "status"), None);
        // Undecodable values are left out rather than guessed at.
        assert_eq!(param("a=%E0%A4%A", "a"), None);
    }
}
