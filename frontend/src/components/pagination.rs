//! Previous and next page of a list.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct PaginationProps {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub on_page: Callback<i64>,
    /// What is counted, for "12 runs".
    pub noun: Noun,
}

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

#[component]
pub fn Pagination(props: &PaginationProps) -> Html {
    let pages = ((props.total + props.per_page - 1) / props.per_page.max(1)).max(1);
    let go = |page: i64| {
        let on_page = props.on_page.clone();
        Callback::from(move |_: MouseEvent| on_page.emit(page))
    };
    html! {
        <nav class="pagination" aria-label="Pages">
            <button type="button" disabled={props.page <= 1} onclick={go(props.page - 1)}>
                { "← Newer" }
            </button>
            <span aria-live="polite">
                { format!("Page {} of {} · {} {}", props.page, pages, props.total, props.noun.plural(props.total)) }
            </span>
            <button type="button" disabled={props.page >= pages} onclick={go(props.page + 1)}>
                { "Older →" }
            </button>
        </nav>
    }
}
