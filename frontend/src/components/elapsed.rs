//! A running clock since a moment; only this text re-renders each second.

use chrono::{DateTime, Utc};
use gloo_timers::callback::Interval;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct ElapsedProps {
    pub since: DateTime<Utc>,
}

#[component]
pub fn Elapsed(props: &ElapsedProps) -> Html {
    let text = use_state_eq(|| format::clock_since(&props.since));
    {
        let text = text.clone();
        use_effect_with(props.since, move |since| {
            let since = *since;
            text.set(format::clock_since(&since));
            let interval = Interval::new(1000, move || text.set(format::clock_since(&since)));
            move || drop(interval)
        });
    }
    html! {
        <time class="elapsed" datetime={format::utc_time(&props.since)}
            title={format!("running since {}", format::local_time(&props.since))}>
            { (*text).clone() }
        </time>
    }
}
