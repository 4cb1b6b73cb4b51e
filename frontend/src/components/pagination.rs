//! Previous and next page of a list.

use yew::prelude::*;

/// A countable word.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noun {
    pub one: &'static str,
    pub many: &'static str,
}

impl Noun {
    fn plural(self, count: i64) -> &'static str {
        if count == 1 {
            self.one
        } else {
            self.many
        }
    }
}

/// "Newer" and "Older" buttons around "Page 2 of 5 · 230 runs";
/// `on_page` gets the page asked for.
pub fn pagination(
    page: i64,
    per_page: i64,
    total: i64,
    on_page: &Callback<i64>,
    noun: Noun,
) -> Html {
    let pages = ((total + per_page - 1) / per_page.max(1)).max(1);
    let go = |page: i64| {
        let on_page = on_page.clone();
        Callback::from(move |_: MouseEvent| on_page.emit(page))
    };
    html! {
        <nav class="pagination" aria-label="Pages">
            <button type="button" disabled={page <= 1} onclick={go(page - 1)}>
                { "← Newer" }
            </button>
            <span aria-live="polite">
                { format!("Page {page} of {pages} · {total} {}", noun.plural(total)) }
            </span>
            <button type="button" disabled={page >= pages} onclick={go(page + 1)}>
                { "Older →" }
            </button>
        </nav>
    }
}
