//! The routes of the app and the frame around every page.

use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api;
use crate::components::api_banner::ApiBanner;
use crate::components::nav::Nav;
use crate::hooks::use_connectivity::{Connectivity, ConnectivityReporter};
use crate::hooks::use_session::Session;
use crate::pages::audit::AuditPage;
use crate::pages::board::BoardPage;
use crate::pages::environment_edit::EnvironmentEditPage;
use crate::pages::environments::EnvironmentsPage;
use crate::pages::health::HealthPage;
use crate::pages::insights::InsightsPage;
use crate::pages::login::LoginPage;
use crate::pages::new_run::NewRunPage;
use crate::pages::not_found::not_found_page;
use crate::pages::password::PasswordPage;
use crate::pages::run_details::RunDetailsPage;
use crate::pages::run_group::RunGroupPage;
use crate::pages::runs::RunsPage;
use crate::pages::schedules::SchedulesPage;
use crate::pages::tokens::TokensPage;
use crate::pages::upload::UploadPage;
use crate::pages::users::UsersPage;
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
    #[at("/login")]
    Login,
    #[at("/tokens")]
    Tokens,
    #[at("/password")]
    Password,
    #[at("/users")]
    Users,
    #[at("/audit")]
    Audit,
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
        Route::Login => html! { <LoginPage /> },
        Route::Tokens => html! { <TokensPage /> },
        Route::Password => html! { <PasswordPage /> },
        Route::Users => html! { <UsersPage /> },
        Route::Audit => html! { <AuditPage /> },
        Route::NotFound => not_found_page(),
    }
}

#[component]
pub fn App() -> Html {
    let connectivity = use_reducer_eq(Connectivity::default);
    // Pollers only report; the dispatcher never changes, so reporting does
    // not re-render them. Only the banner reads the state.
    let reporter = ConnectivityReporter(connectivity.dispatcher());
    let session = use_state(Session::default);
    {
        // Once: whether accounts are on, and who is logged in. A 401 of
        // any page's request sends the browser to the login page anyway.
        let session = session.clone();
        use_effect_with((), move |()| {
            spawn_local(async move {
                let auth = api::identity::status().await.map_or(true, |s| s.auth);
                let me = api::identity::me().await.ok();
                session.set(Session {
                    loaded: true,
                    auth,
                    me,
                });
            });
        });
    }
    let auth_off = session.loaded && !session.auth;
    html! {
        <BrowserRouter>
            <ContextProvider<Session> context={(*session).clone()}>
            <ContextProvider<ConnectivityReporter> context={reporter}>
                <ContextProvider<UseReducerHandle<Connectivity>> context={connectivity}>
                    <Nav />
                    <ApiBanner />
                </ContextProvider<UseReducerHandle<Connectivity>>>
                if auth_off {
                    <div class="auth-off-banner" role="note">
                        <strong>{ "AUTH=off: " }</strong>
                        { "no accounts; whoever reaches this service is an admin and can run any code on its machine." }
                    </div>
                }
                <main id="main">
                    <Switch<Route> render={switch} />
                </main>
            </ContextProvider<ConnectivityReporter>>
            </ContextProvider<Session>>
        </BrowserRouter>
    }
}
