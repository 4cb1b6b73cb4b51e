//! `/api/environments`: the environments runs queue for.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};
use shared::validate::{self, Fields};
use shared::{ApiErrorBody, Environment, NewEnvironment, UpdateEnvironment};
use std::collections::BTreeMap;

use super::etag::conditional_cached;
use super::{json_body, path_id};
use crate::db::environments::EnvironmentChanges;
use crate::db::{self, run_blocking};
use crate::error::ApiError;
use crate::state::AppState;

const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/environments")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/api/environments/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
    );
}

fn environment_id(raw: &str) -> Result<i32, ApiError> {
    let id: i64 = path_id(raw, "environment id")?;
    // Ids outside 1..100 can never exist.
    validate::environment_id(id)
        .map_err(|_| ApiError::NotFound(format!("environment {raw} does not exist")))
}

/// Every environment, by id, with whether it is busy and its queue.
#[utoipa::path(
    get,
    path = "/api/environments",
    tag = "environments",
    responses(
        (status = 200, description = "The environments", body = Vec<Environment>,
            headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
    )
)]
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let environments =
        conditional_cached(&state, &req, |conn| db::environments::list(conn)).await?;
    Ok(environments.respond(|list| HttpResponse::Ok().json(list)))
}

/// One environment.
#[utoipa::path(
    get,
    path = "/api/environments/{id}",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    responses(
        (status = 200, description = "The environment", body = Environment, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = environment_id(&id)?;
    let environment =
        conditional_cached(&state, &req, move |conn| db::environments::get(conn, id)).await?;
    Ok(environment.respond(|environment| HttpResponse::Ok().json(environment)))
}

/// The settings fields of a body; each present one is checked.
fn parse_settings(object: &Map<String, Value>, fields: &mut Fields) -> EnvironmentChanges {
    let name = object.get("name").and_then(|v| match v {
        Value::String(raw) => fields.check("name", validate::environment_name(raw)),
        _ => fields.check("name", Err::<String, _>("must be a string".into())),
    });
    let description = object.get("description").and_then(|v| match v {
        Value::String(raw) => fields.check("description", validate::description(raw)),
        Value::Null => Some(String::new()),
        _ => fields.check("description", Err::<String, _>("must be a string".into())),
    });
    let variables = object.get("variables").and_then(|v| match v {
        Value::Null => Some(BTreeMap::new()),
        Value::Object(map) => {
            let strings: Option<BTreeMap<String, String>> = map
                .iter()
                .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect();
            match strings {
                Some(vars) => fields.check("variables", validate::variables(&vars).map(|()| vars)),
                None => fields.check(
                    "variables",
                    Err::<BTreeMap<_, _>, _>("values must be strings".into()),
                ),
            }
        }
        _ => fields.check(
            "variables",
            Err::<BTreeMap<_, _>, _>("must be an object of name to value".into()),
        ),
    });
    let run_timeout_secs = object.get("run_timeout_secs").and_then(|v| match v {
        Value::Null => Some(None),
        Value::Number(n) => {
            let secs = n.as_i64().and_then(|s| i32::try_from(s).ok());
            match secs {
                Some(secs) => {
                    fields.check("run_timeout_secs", validate::run_timeout_secs(Some(secs)))
                }
                None => fields.check(
                    "run_timeout_secs",
                    Err::<Option<i32>, _>("must be a whole number of seconds".into()),
                ),
            }
        }
        _ => fields.check(
            "run_timeout_secs",
            Err::<Option<i32>, _>("must be a number of seconds or null".into()),
        ),
    });
    EnvironmentChanges {
        name,
        description,
        variables,
        run_timeout_secs,
    }
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))
}

/// Create an environment (ids 1 to 100; all exist after installation).
#[utoipa::path(
    post,
    path = "/api/environments",
    tag = "environments",
    request_body(content = NewEnvironment, content_type = "application/json"),
    responses(
        (status = 201, description = "The environment", body = Environment,
            headers(("Location" = String, description = "`/api/environments/{id}`"))),
        (status = 400, description = "Malformed JSON, not JSON, not an object", body = ApiErrorBody),
        (status = 409, description = "The id exists", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, MAX_BODY_BYTES).await?;
    let object = as_object(&body)?;
    let mut fields = Fields::default();
    let id = match object.get("id") {
        Some(Value::Number(n)) => match n.as_i64() {
            Some(id) => fields.check("id", validate::environment_id(id)),
            None => fields.check("id", Err::<i32, _>("must be a whole number".into())),
        },
        Some(_) => fields.check("id", Err::<i32, _>("must be a number".into())),
        None => fields.check("id", Err::<i32, _>("is required".into())),
    };
    let settings = parse_settings(object, &mut fields);
    if !object.contains_key("name") {
        fields.add("name", "is required");
    }
    let (Some(id), Some(name), true) = (id, settings.name, fields.is_empty()) else {
        return Err(ApiError::validation(fields.into_inner()));
    };
    let description = settings.description.unwrap_or_default();
    let variables = settings.variables.unwrap_or_default();
    let timeout = settings.run_timeout_secs.flatten();
    let environment = run_blocking(&state.pool, move |conn| {
        db::environments::create(conn, id, &name, &description, &variables, timeout)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/environments/{id}")))
        .json(environment))
}

/// Change an environment's settings; a field left out keeps its value.
#[utoipa::path(
    put,
    path = "/api/environments/{id}",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    request_body(content = UpdateEnvironment, content_type = "application/json"),
    responses(
        (status = 200, description = "The environment", body = Environment),
        (status = 400, description = "The id is not a number; malformed JSON, not JSON, not an object", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = environment_id(&id)?;
    let body = json_body(&req, payload, MAX_BODY_BYTES).await?;
    let object = as_object(&body)?;
    let mut fields = Fields::default();
    if let Some(given) = object.get("id") {
        if given.as_i64() != Some(i64::from(id)) {
            fields.add("id", "cannot be changed");
        }
    }
    let changes = parse_settings(object, &mut fields);
    if !fields.is_empty() {
        return Err(ApiError::validation(fields.into_inner()));
    }
    let environment = run_blocking(&state.pool, move |conn| {
        db::environments::update(conn, id, changes)
    })
    .await?;
    Ok(HttpResponse::Ok().json(environment))
}

/// Delete an idle environment without queued runs.
#[utoipa::path(
    delete,
    path = "/api/environments/{id}",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
        (status = 409, description = "It is busy or has queued runs", body = ApiErrorBody),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = environment_id(&id)?;
    run_blocking(&state.pool, move |conn| db::environments::delete(conn, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
