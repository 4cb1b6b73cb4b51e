//! One tile of the board: an environment id, its state in colour and in
//! words, who has it, its queue and when it should be free. The whole tile
//! opens the environment (or, for an id without one, the form that sets
//! it up).

use serde::Serialize;
use yew::prelude::*;
use yew_router::prelude::*;

use super::model::Tile;
use crate::app::Route;
use crate::components::run_link::open_in_app;
use crate::format;

#[derive(Properties, PartialEq)]
pub struct TileProps {
    pub tile: Tile,
}

/// `?id=7` for the new-environment form.
#[derive(Serialize)]
struct IdQuery {
    id: i32,
}

/// Who has the environment, and the line under it: the run, the hold's
/// end, or why it is out of rotation.
fn holder_lines(tile: &Tile) -> (Option<String>, Option<String>) {
    let detail = match (&tile.maintenance, tile.current_run_id, &tile.hold_until) {
        (Some(reason), _, _) => Some(reason.clone()),
        (None, Some(run), _) => Some(format!("run #{run}")),
        (None, None, Some(until)) => Some(format!("until {}", format::local_hm(until))),
        (None, None, None) => None,
    };
    (tile.holder.clone(), detail)
}

/// The queue and the estimate.
fn queue_line(tile: &Tile) -> Option<String> {
    let mut parts = Vec::new();
    if tile.queued > 0 {
        parts.push(format!("{} queued", tile.queued));
    }
    if tile.reservations_waiting > 0 {
        parts.push(format!("{} reserved", tile.reservations_waiting));
    }
    if let Some(at) = &tile.free_at {
        parts.push(format!("free ~{}", format::local_hm(at)));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

#[component]
pub fn BoardTile(props: &TileProps) -> Html {
    let tile = &props.tile;
    let navigator = use_navigator();
    let id = tile.id;
    let word = tile.state_word();
    let state_class = tile.state.map(|s| s.as_str()).unwrap_or("none");
    let Some(_) = tile.state else {
        let href = format!("{}?id={id}", Route::NewEnvironment.to_path());
        let onclick = Callback::from(move |event: MouseEvent| {
            if event.ctrl_key() || event.meta_key() || event.shift_key() || event.button() != 0 {
                return;
            }
            if let Some(navigator) = &navigator {
                event.prevent_default();
                let _ = navigator.push_with_query(&Route::NewEnvironment, &IdQuery { id });
            }
        });
        return html! {
            <li class="tile tile-none" data-environment-id={id.to_string()} data-state="none">
                <a {href} {onclick} aria-label={format!("Environment {id}: not set up; set it up")}>
                    <span class="tile-head"><span class="tile-id">{ id }</span></span>
                    <span class="tile-line muted">{ "not set up" }</span>
                    <span class="tile-line set-up">{ "Set up" }</span>
                </a>
            </li>
        };
    };
    let (holder, detail) = holder_lines(tile);
    let queue = queue_line(tile);
    let label = [
        Some(format!("Environment {id}, {}: {word}", tile.name)),
        holder.clone(),
        detail.clone(),
        queue.clone(),
        tile.health.as_ref().map(|h| {
            format!(
                "health {}{}",
                h.percent,
                if h.suspect { ", suspect" } else { "" }
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("; ");
    html! {
        <li class={classes!("tile", format!("tile-{state_class}"))}
            data-environment-id={id.to_string()} data-state={state_class}>
            <a href={Route::Environment { id }.to_path()} onclick={open_in_app(&navigator, Route::Environment { id })}
                aria-label={label.clone()} title={label}>
                <span class="tile-head">
                    <span class="tile-id">{ id }</span>
                    <span class={classes!("badge", format!("env-{state_class}"))}>{ word }</span>
                </span>
                <span class="tile-line tile-name">{ tile.name.clone() }</span>
                if let Some(holder) = holder {
                    <span class="tile-line tile-holder">{ holder }</span>
                }
                if let Some(detail) = detail {
                    <span class="tile-line tile-detail">{ detail }</span>
                }
                if let Some(queue) = queue {
                    <span class="tile-queue">{ queue }</span>
                }
                if let Some(health) = &tile.health {
                    <span class="tile-health" title={health.reason.clone().unwrap_or_default()}>
                        <span class={classes!("health", format!("health-{}", health.grade))}>{ format!("health {}", health.percent) }</span>
                        if health.suspect {
                            <span class="badge suspect">{ "suspect" }</span>
                        }
                    </span>
                }
                if !tile.labels.is_empty() {
                    <span class="tile-labels">
                        { for tile.labels.iter().map(|l| html! { <span class="label">{ l.clone() }</span> }) }
                    </span>
                }
            </a>
        </li>
    }
}
