//! `/api/openapi.json`: the OpenAPI 3 document of the whole API, generated
//! from the handlers' `#[utoipa::path]` attributes and the shared types,
//! so that it cannot drift from the code.

use actix_web::{web, HttpResponse};
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::routes::{
    environments, health, identity, insights, metrics, reservations, run_groups, runs, schedules,
    tests, webhooks,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/openapi.json").route(web::get().to(document)));
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Test executor",
        description = "Runs Python tests with pytest on shared test environments, one run at a \
            time per environment. Every 4xx/5xx answer has the body `ApiErrorBody`. The polled \
            GET endpoints send an `ETag` and answer `304 Not Modified` to a matching \
            `If-None-Match`."
    ),
    paths(
        runs::create,
        runs::list,
        runs::get,
        runs::log,
        runs::log_text,
        runs::cases,
        runs::junit_xml,
        runs::cancel,
        runs::rerun,
        runs::pin,
        runs::unpin,
        runs::artifacts,
        runs::artifact,
        run_groups::create,
        run_groups::list,
        run_groups::get,
        run_groups::cancel,
        environments::list,
        environments::create,
        environments::get,
        environments::update,
        environments::delete,
        reservations::reserve,
        reservations::list,
        reservations::get,
        reservations::extend,
        reservations::release,
        reservations::start_maintenance,
        reservations::end_maintenance,
        webhooks::create,
        webhooks::list,
        webhooks::get,
        webhooks::delete,
        webhooks::deliveries,
        schedules::create,
        schedules::list,
        schedules::get,
        schedules::update,
        schedules::delete,
        tests::list,
        tests::markers,
        tests::upload,
        tests::source,
        tests::delete,
        insights::history,
        insights::insights,
        insights::environment_health,
        insights::passed_elsewhere,
        health::health,
        document,
        metrics::scrape,
        identity::status,
        identity::login,
        identity::setup,
        identity::logout,
        identity::me,
        identity::change_password,
        identity::list_users,
        identity::create_user,
        identity::update_user,
        identity::delete_user,
        identity::list_tokens,
        identity::create_token,
        identity::delete_token,
        identity::audit,
    ),
    tags(
        (name = "runs", description = "Queue, follow, cancel and re-run test runs"),
        (name = "environments", description = "The shared test environments runs queue for"),
        (name = "tests", description = "The catalog of test files under the tests root"),
        (name = "webhooks", description = "Events POSTed to other systems, signed, retried"),
        (name = "schedules", description = "Runs queued by cron expressions"),
        (name = "insights", description = "How tests behaved over time"),
        (name = "service", description = "Health, this document, metrics"),
        (name = "identity", description = "Logging in, users, API tokens, the audit log"),
    ),
    modifiers(&Security, &ServerErrors, &EmptyQueryValues)
)]
pub struct ApiDoc;

/// How callers prove who they are: an API token (`Authorization: Bearer`)
/// or the session cookie of a login; every operation needs one of them
/// but the few that say otherwise (health, this document, logging in).
struct Security;

/// Operations anyone may call, without credentials.
const PUBLIC: [&str; 5] = [
    "/api/health",
    "/api/openapi.json",
    "/api/auth/status",
    "/api/auth/login",
    "/api/auth/setup",
];

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A personal API token (POST /api/tokens), or ADMIN_TOKEN",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::http::auth::SESSION_COOKIE,
                "The session cookie of POST /api/auth/login",
            ))),
        );
        openapi.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ApiErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public = PUBLIC.contains(&path.as_str());
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                if public {
                    // Open to all: an empty requirement.
                    operation.security = Some(vec![SecurityRequirement::default()]);
                    continue;
                }
                let responses = &mut operation.responses.responses;
                responses.entry("401".into()).or_insert_with(|| {
                    error("No credentials, or wrong, expired or revoked ones").into()
                });
                responses.entry("403".into()).or_insert_with(|| {
                    error(
                        "The caller's role does not allow it (see the README's roles), or \
                         browser safety refused it",
                    )
                    .into()
                });
            }
        }
    }
}

/// The answers any operation may give (browser safety's 403) or any that
/// reaches the database may, added to each rather than repeated in every
/// attribute.
struct ServerErrors;

impl Modify for ServerErrors {
    fn modify(&self, openapi: &mut Document) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ApiErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/") || path == "/api/openapi.json" {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses.entry("403".into()).or_insert_with(|| {
                    error(
                        "Refused by browser safety: a request from another site that would \
                         change something, or a host name not in ALLOWED_HOSTS",
                    )
                    .into()
                });
                responses.entry("500".into()).or_insert_with(|| {
                    error("A bug (never for bad input); the cause is in the service log").into()
                });
                responses
                    .entry("503".into())
                    .or_insert_with(|| error("The database cannot be reached").into());
            }
        }
    }
}

/// An empty query parameter (`?status=&page=`, as an HTML form sends it)
/// counts as absent (see `routes::query_param`): each typed one also
/// accepts the empty string.
struct EmptyQueryValues;

impl Modify for EmptyQueryValues {
    fn modify(&self, openapi: &mut Document) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.parameter_in != ParameterIn::Query {
                        continue;
                    }
                    let Some(schema) = parameter.schema.take() else {
                        continue;
                    };
                    let is_text = matches!(&schema, RefOr::T(Schema::Object(object))
                        if object.schema_type == SchemaType::Type(Type::String));
                    parameter.schema = Some(if is_text {
                        schema
                    } else {
                        let empty = ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some([""]))
                            .build();
                        AnyOfBuilder::new().item(schema).item(empty).into()
                    });
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn document() -> HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json.as_str())
}
