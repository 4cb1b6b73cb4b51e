//! A run's log, coloured as pytest printed it. It follows the tail while
//! new output arrives, until the user scrolls up.

use std::cell::Cell;
use std::rc::Rc;

use web_sys::Element;
use yew::prelude::*;

use crate::api::ApiError;
use crate::hooks::use_run_log::LogPiece;

/// Closer to the bottom than this counts as being at the bottom.
const BOTTOM_SLACK_PX: i32 = 24;

#[derive(Properties, PartialEq)]
struct PieceProps {
    piece: LogPiece,
}

/// One answer's worth of log: rendered once, never again.
#[component]
fn Piece(props: &PieceProps) -> Html {
    props
        .piece
        .0
        .iter()
        .map(|segment| {
            let classes = segment.style.classes();
            if classes.is_empty() {
                html! { { segment.text.clone() } }
            } else {
                html! { <span class={classes}>{ segment.text.clone() }</span> }
            }
        })
        .collect()
}

#[derive(Properties, PartialEq)]
pub struct LogViewProps {
    pub pieces: Vec<LogPiece>,
    pub complete: bool,
    #[prop_or_default]
    pub error: Option<ApiError>,
    pub raw_url: AttrValue,
}

fn at_bottom(element: &Element) -> bool {
    element.scroll_top() + element.client_height() >= element.scroll_height() - BOTTOM_SLACK_PX
}

#[component]
pub fn LogView(props: &LogViewProps) -> Html {
    let pane = use_node_ref();
    let follow = use_mut_ref(|| Rc::new(Cell::new(true)));
    let following = use_state_eq(|| true);

    // After every render: keep the tail in view while following.
    {
        let pane = pane.clone();
        let follow = follow.borrow().clone();
        use_effect(move || {
            if follow.get() {
                if let Some(element) = pane.cast::<Element>() {
                    element.set_scroll_top(element.scroll_height());
                }
            }
        });
    }

    let onscroll = {
        let pane = pane.clone();
        let follow = follow.borrow().clone();
        let following = following.clone();
        Callback::from(move |_: Event| {
            if let Some(element) = pane.cast::<Element>() {
                let bottom = at_bottom(&element);
                follow.set(bottom);
                following.set(bottom);
            }
        })
    };
    let resume = {
        let pane = pane.clone();
        let follow = follow.borrow().clone();
        let following = following.clone();
        Callback::from(move |_: MouseEvent| {
            follow.set(true);
            following.set(true);
            if let Some(element) = pane.cast::<Element>() {
                element.set_scroll_top(element.scroll_height());
            }
        })
    };

    let state = if props.complete {
        "complete"
    } else if *following {
        "following the output"
    } else {
        "paused: scrolled up"
    };
    html! {
        <section class="log" aria-labelledby="log-title">
            <div class="section-head">
                <h2 id="log-title">{ "Log" }</h2>
                <span class="log-state" aria-live="polite">{ state }</span>
                if !props.complete && !*following {
                    <button type="button" onclick={resume}>{ "Follow the end" }</button>
                }
                <a href={props.raw_url.clone()} target="_blank" rel="noopener">{ "Raw log" }</a>
            </div>
            if let Some(error) = &props.error {
                <p class="error" role="alert">{ format!("The log could not be read: {}", error.message()) }</p>
            }
            <pre class="log-pane" ref={pane} {onscroll} tabindex="0" aria-label="Run log" data-complete={props.complete.to_string()}>
                if props.pieces.is_empty() {
                    <span class="log-empty">{ if props.complete { "(no output)" } else { "waiting for output…" } }</span>
                }
                { for props.pieces.iter().enumerate().map(|(index, piece)| html! {
                    <Piece key={index} piece={piece.clone()} />
                }) }
            </pre>
        </section>
    }
}
