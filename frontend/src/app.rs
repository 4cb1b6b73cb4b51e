//! The routes of the app and the frame around every page.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::api_banner::ApiBanner;
use crate::components::nav::Nav;
use crate::hooks::use_connectivity::{Connectivity, ConnectivityReporter};
use crate::pages::board::BoardPage;
use crate::pages::environment_edit::EnvironmentEditPage;
use crate::pages::environments::EnvironmentsPage;
use crate::pages::health::HealthPage;
use crate::pages::insights::InsightsPage;
use crate::pages::new_run::NewRunPage;
use crate::pages::not_found::not_found_page;
use crate::pages::run_details::RunDetailsPage;
use crate::pages::run_group::RunGroupPage;
use crate::pages::runs::RunsPage;
use crate::pages::schedules::SchedulesPage;
use crate::pages::upload::UploadPage;
use crate::pages::webhooks::WebhooksPage;

#[derive(Debug, Clone, PartialEq, Routable)]
pub enum Route {
    #[at("/")]
    Runs,
    #[at("/runs/new")]
    NewRun,
    #[at("/runs/:id")]
    Run { id: i64 },
    #[at("/run-groups/:id")]
    RunGroup { id: i64 },
    #[at("/upload")]
    Upload,
    #[at("/insights")]
    Insights,
    #[at("/health")]
    Health,
    #[at("/board")]
    Board,
    #[at("/environments")]
    Environments,
    #[at("/environments/new")]
    NewEnvironment,
    #[at("/environments/:id")]
    Environment { id: i32 },
    #[at("/schedules")]
    Schedules,
    #[at("/webhooks")]
    Webhooks,
    #[not_found]
    #[at("/404")]
    NotFound,
}

fn switch(route: Route) -> Html {
    match route {
        Route::Runs => html! { <RunsPage /> },
        Route::NewRun => html! { <NewRunPage /> },
        // Keyed so that going from one run to another starts afresh.
        Route::Run { id } => html! { <RunDetailsPage key={id} {id} /> },
        Route::RunGroup { id } => html! { <RunGroupPage key={id} {id} /> },
        Route::Upload => html! { <UploadPage /> },
        Route::Insights => html! { <InsightsPage /> },
        Route::Health => html! { <HealthPage /> },
        Route::Board => html! { <BoardPage /> },
        Route::Environments => html! { <EnvironmentsPage /> },
        Route::NewEnvironment => html! { <EnvironmentEditPage key="new" id={None::<i32>} /> },
        Route::Environment { id } => {
            html! { <EnvironmentEditPage key={id.to_string()} id={Some(id)} /> }
        }
        Route::Schedules => html! { <SchedulesPage /> },
        Route::Webhooks => html! { <WebhooksPage /> },
        Route::NotFound => not_found_page(),
    }
}

#[component]
pub fn App() -> Html {
    let connectivity = use_reducer_eq(Connectivity::default);
    // Pollers only report; the dispatcher never changes, so reporting does
    // not re-render them. Only the banner reads the state.
    let reporter = ConnectivityReporter(connectivity.dispatcher());
    html! {
        <BrowserRouter>
            <ContextProvider<ConnectivityReporter> context={reporter}>
                <ContextProvider<UseReducerHandle<Connectivity>> context={connectivity}>
                    <Nav />
                    <ApiBanner />
                </ContextProvider<UseReducerHandle<Connectivity>>>
                <main id="main">
                    <Switch<Route> render={switch} />
                </main>
            </ContextProvider<ConnectivityReporter>>
        </BrowserRouter>
    }
}
