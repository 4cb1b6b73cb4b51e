//! The latest finished runs as a small bar chart, drawn as SVG: one bar per
//! run, oldest on the left, coloured by status, as tall as it took, with
//! the median as a dashed line; and the pass rate and median as figures.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::format;
use crate::trend::RunTrend;

/// The chart's coordinates, in pixels: one slot per run.
const SLOT: i64 = 8;
const BAR: i64 = 6;
const HEIGHT: i64 = 40;
/// Even an instant run shows as a sliver.
const MIN_BAR: i64 = 3;

fn bar_height(duration_ms: Option<i64>, longest_ms: i64) -> i64 {
    match duration_ms {
        Some(ms) if longest_ms > 0 => MIN_BAR + (HEIGHT - MIN_BAR) * ms.max(0) / longest_ms,
        _ => MIN_BAR,
    }
}

/// A plain function, not a component, for a smaller wasm: the runs page
/// re-renders only when its runs change, and then so may the chart.
pub fn run_trend_chart(trend: &RunTrend, navigator: &Option<Navigator>) -> Html {
    if trend.bars.is_empty() {
        return html! {};
    }
    let longest = trend.longest_ms();
    // As wide as there are runs, so that a bar keeps its width whatever
    // their number; a narrow screen squeezes the whole.
    let width = SLOT * trend.bars.len() as i64;
    let pass_rate = trend
        .pass_percent()
        .map(|percent| format!("{percent} %"))
        .unwrap_or_else(|| "—".to_string());
    let median = trend
        .median_ms
        .map(format::duration_ms)
        .unwrap_or_else(|| "—".to_string());
    let caption = format!("Last {} finished runs", trend.bars.len());
    let label = format!(
        "{caption}: {} of {} passed, median {median}",
        trend.passed, trend.judged
    );
    html! {
        <section class="run-trend" aria-label="Recent runs">
            <svg viewBox={format!("0 0 {width} {HEIGHT}")} width={width.to_string()} height={HEIGHT.to_string()}
                preserveAspectRatio="none" role="img" aria-label={label}>
                { for trend.bars.iter().enumerate().map(|(index, bar)| {
                    let height = bar_height(bar.duration_ms, longest);
                    let x = index as i64 * SLOT + (SLOT - BAR) / 2;
                    let id = bar.run_id;
                    let duration = bar.duration_ms.map(format::duration_ms).unwrap_or_default();
                    let navigator = navigator.clone();
                    let onclick = Callback::from(move |_: MouseEvent| {
                        if let Some(navigator) = &navigator {
                            navigator.push(&Route::Run { id });
                        }
                    });
                    html! {
                        <rect key={id} class={format!("bar status-{}", bar.status.as_str())}
                            x={x.to_string()} y={(HEIGHT - height).to_string()}
                            width={BAR.to_string()} height={height.to_string()} {onclick}>
                            <title>{ format!("Run #{id}: {} {duration}", bar.status.as_str()) }</title>
                        </rect>
                    }
                }) }
                if let Some(ms) = trend.median_ms {
                    <line class="median" x1="0" x2={width.to_string()}
                        y1={(HEIGHT - bar_height(Some(ms), longest)).to_string()}
                        y2={(HEIGHT - bar_height(Some(ms), longest)).to_string()} />
                }
            </svg>
            <p class="trend-figures">
                <span class="trend-caption">{ caption }</span>
                <span title="Of the runs that came to a verdict: cancelled runs are left out">
                    <strong class="pass-rate">{ pass_rate }</strong>{ " passed " }
                    <span class="trend-detail">{ format!("({} of {})", trend.passed, trend.judged) }</span>
                </span>
                <span><strong class="median-duration">{ median }</strong>{ " median" }</span>
            </p>
        </section>
    }
}
