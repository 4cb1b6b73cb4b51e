//! A clock next to a moment: the time since a run started (`12:30`), or,
//! for an estimated start still to come, a rough countdown (`starts in ~3
//! min`). Only this text re-renders as time passes, and only when it
//! changes. One component for both: each component type costs the wasm.

use chrono::{DateTime, Utc};
use gloo_timers::callback::Interval;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct ElapsedProps {
    pub at: DateTime<Utc>,
    /// `at` is an estimated start: count down to it.
    #[prop_or_default]
    pub countdown: bool,
}

fn text(at: &DateTime<Utc>, countdown: bool) -> String {
    if countdown {
        format!(
            "starts {}",
            format::in_about(at.timestamp_millis() as f64, format::now_ms())
        )
    } else {
        format::clock_since(at)
    }
}

#[component]
pub fn Elapsed(props: &ElapsedProps) -> Html {
    let countdown = props.countdown;
    let shown = use_state_eq(|| text(&props.at, countdown));
    {
        let shown = shown.clone();
        use_effect_with((props.at, countdown), move |&(at, countdown)| {
            shown.set(text(&at, countdown));
            let interval = Interval::new(1000, move || shown.set(text(&at, countdown)));
            move || drop(interval)
        });
    }
    let (class, title) = if countdown {
        ("starts-in", "estimated start")
    } else {
        ("elapsed", "running since")
    };
    html! {
        <time {class} datetime={format::utc_time(&props.at)}
            title={format!("{title} {}", format::local_time(&props.at))}>
            { (*shown).clone() }
        </time>
    }
}
