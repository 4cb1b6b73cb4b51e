//! One environment's health: its score, the suspect badge, the reasons in
//! words and the tests that fail there while they pass elsewhere.

use shared::EnvironmentHealth;
use yew::prelude::*;

use crate::health;

/// The score as a badge coloured by its grade, and the suspect badge.
pub fn score_badges(h: &EnvironmentHealth) -> Html {
    html! {
        <>
            <span class={classes!("badge", "health", format!("health-{}", health::grade(h.score)))}
                title="Health score: 100% is healthy">
                { format!("health {}", health::percent(h.score)) }
            </span>
            if h.suspect {
                <span class="badge suspect" title="Its failures point at the environment, not at the tests">{ "suspect" }</span>
            }
        </>
    }
}

/// The reasons, then the environment-specific failures.
pub fn details(h: &EnvironmentHealth) -> Html {
    html! {
        <>
            <ul class="health-reasons">
                { for h.reasons.iter().map(|reason| html! { <li>{ reason.clone() }</li> }) }
            </ul>
            if !h.env_specific_failures.is_empty() {
                <details class="env-failures">
                    <summary>{ match h.env_specific_failures.len() {
                        1 => "1 test fails here and passes elsewhere".to_string(),
                        n => format!("{n} tests fail here and pass elsewhere"),
                    } }</summary>
                    <ul>
                        { for h.env_specific_failures.iter().map(|f| html! {
                            <li>
                                <code class="nodeid">{ f.nodeid.clone() }</code>
                                { format!(": failed {} times here, passed on {} other {}{}", f.failed_here, f.passed_elsewhere,
                                    if f.passed_elsewhere == 1 { "environment" } else { "environments" },
                                    if f.failed_elsewhere > 0 { format!(", failed on {} other too", f.failed_elsewhere) } else { String::new() }) }
                            </li>
                        }) }
                    </ul>
                </details>
            }
        </>
    }
}

#[derive(Properties, PartialEq)]
pub struct HealthPanelProps {
    pub environment_id: i32,
}

/// The health section of an environment's page, over the last week.
#[component]
pub fn HealthPanel(props: &HealthPanelProps) -> Html {
    let ranking = crate::hooks::use_polling::use_polling(
        7u32,
        Some(30_000),
        crate::api::insights::environment_health,
    );
    let id = props.environment_id;
    html! {
        <section class="health-panel" aria-labelledby="health-title">
            <h2 id="health-title">{ "Health (last 7 days)" }</h2>
            { match (ranking.data().and_then(|list| health::of(list, id)), ranking.error()) {
                (Some(h), _) => html! {
                    <div class="environment-health" data-suspect={h.suspect.to_string()}>
                        <p>{ score_badges(h) }</p>
                        { details(h) }
                    </div>
                },
                (None, Some(error)) => html! {
                    <p class="error" role="alert">{ format!("The health could not be read: {}", error.message()) }</p>
                },
                (None, None) => html! { <p class="loading">{ "Loading the health…" }</p> },
            } }
        </section>
    }
}
