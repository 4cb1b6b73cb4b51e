//! Builds the service from its configuration: database, scheduler, HTTP
//! server; and stops it in order.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::middleware::{from_fn, ErrorHandlers, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};

use crate::catalog::TestsRoot;
use crate::config::Config;
use crate::db;
use crate::db::instance::InstanceLock;
use crate::exec::runner::RunnerContext;
use crate::exec::scheduler::Scheduler;
use crate::http;
use crate::http::state::AppState;

/// How long start-up waits for the runs of a past life to be finished
/// before it says it is ready (it serves requests before that anyway).
const RECOVERY_PATIENCE: Duration = Duration::from_secs(5);

/// How long start-up waits for the database before giving up.
const DATABASE_WAIT: Duration = Duration::from_secs(30);

pub async fn run(mut config: Config) -> Result<(), String> {
    // First: tests (and anything else of this user) may not read this
    // process's environment or memory from now on.
    if let Err(e) = crate::sys::user::make_undumpable() {
        tracing::warn!(error = %e, "the service's environment stays readable by its user");
    }
    if let Some(spec) = &config.run_as_user {
        let user = crate::sys::user::RunAs::resolve(spec)?;
        tracing::info!(user = %user.name, uid = user.uid, "tests run as another user");
        crate::sys::process::run_tests_as(user);
    }
    crate::sys::process::prepare_supervisor();
    let listener = TcpListener::bind(&config.bind_addr)
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind_addr))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    if config.instance_id.is_empty() {
        let ephemeral = config.bind_addr.ends_with(":0");
        config.instance_id = crate::config::default_instance_id(address.port(), ephemeral);
    }
    let host = if address.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        address.ip().to_string()
    };
    let public_url = format!("http://{host}:{}", address.port());

    let config = Arc::new(config);
    let tests_root = TestsRoot::open(&config.tests_root)?;
    let pool = db::build_pool(&config.database_url, config.http_pool());
    let runner_pool = db::build_pool(&config.database_url, config.runner_pool());
    let migrate_pool = pool.clone();
    actix_web::rt::task::spawn_blocking(move || migrate(&migrate_pool))
        .await
        .map_err(|e| e.to_string())??;
    prepare_identity(&pool, &config).await?;

    // Before anything of a past life is touched: that past life must be
    // dead, not another live process under the same name.
    let (url, id) = (config.database_url.clone(), config.instance_id.clone());
    let labels = config.runner_labels.clone();
    let lock = actix_web::rt::task::spawn_blocking(move || {
        let mut lock = take_instance_lock(&url, &id)?;
        lock.register(&id, labels.as_deref())?;
        Ok::<_, String>(lock)
    })
    .await
    .map_err(|e| e.to_string())??;
    let (url, id) = (config.database_url.clone(), config.instance_id.clone());
    let labels = config.runner_labels.clone();
    std::thread::Builder::new()
        .name("instance-lock".into())
        .spawn(move || keep_instance_lock(lock, &url, &id, labels.as_deref()))
        .map_err(|e| format!("cannot start the instance lock's thread: {e}"))?;

    let runtime = crate::exec::runner::plugin::RuntimeDir::create()
        .map_err(|e| format!("cannot create the runner's private directory: {e}"))?;
    let ctx = RunnerContext {
        pool: runner_pool,
        config: Arc::clone(&config),
        tests_root: tests_root.clone(),
        public_url: public_url.clone(),
        shutdown_at: Arc::default(),
        runtime: Arc::new(runtime),
    };
    // The first run need not wait for a supervisor to start.
    crate::sys::process::keep_a_spare(crate::exec::runner::supervisor_settings(&ctx));
    // Runs of a past life are finished by the scheduler before it claims
    // anything, while requests are already answered: a database that is
    // slow to answer never keeps the port from serving.
    let scheduler = Scheduler::new(ctx);

    let state_tests_root = tests_root.clone();
    let health_rule = config.health_auto_maintenance.then(|| {
        actix_web::rt::spawn(auto_maintenance(pool.clone(), config.health_check_interval))
    });

    let state = AppState {
        pool,
        config: Arc::clone(&config),
        tests_root,
        scheduler: Arc::clone(&scheduler),
        responses: Arc::default(),
        versions: crate::http::versions::StateVersions::new(
            &config.database_url,
            config.http_pool().checkout,
        ),
        heavy_reads: Arc::new(tokio::sync::Semaphore::new(
            crate::http::state::heavy_read_permits(config.db_pool_size) as usize,
        )),
        markers: Arc::default(),
    };
    let metrics_server = match &config.metrics_bind_addr {
        Some(addr) => Some(metrics_listener(addr, state.clone())?),
        None => None,
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .wrap(ErrorHandlers::new().default_handler(http::json_error_body))
            // Who the caller is and whether its role allows the route, on
            // the normalised path, after browser safety.
            .wrap(from_fn(http::auth::guard))
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            // Before any route, extractor or body is looked at.
            .wrap(from_fn(http::browser_safety::browser_safety))
            // Outermost: it sees every answer as the client gets it.
            .wrap(from_fn(http::request_log::request_log))
            .configure(http::config)
            .default_service(web::to(http::not_found))
    })
    .listen(listener)
    .map_err(|e| e.to_string())?
    .shutdown_timeout(5)
    .run();

    let metrics_serving = metrics_server.map(actix_web::rt::spawn);
    let scheduling = actix_web::rt::spawn(Arc::clone(&scheduler).run());
    let listening = actix_web::rt::spawn(crate::exec::listener::listen(
        config.database_url.clone(),
        Arc::clone(&scheduler),
    ));
    let background = db::build_pool(&config.database_url, config.background_pool());
    let delivering = actix_web::rt::spawn(crate::exec::webhooks::deliver_forever(
        background.clone(),
        config.webhooks,
    ));
    // At once: a fire missed while no instance was up is run now.
    let firing = actix_web::rt::spawn(fire_schedules(
        background,
        state_tests_root,
        Arc::clone(&config),
        Arc::clone(&scheduler),
    ));
    // A connection of its own: a long pass takes none from runs or requests.
    let pruning = actix_web::rt::spawn(crate::exec::retention::run(
        db::build_pool(&config.database_url, config.retention_pool()),
        config.retention_days,
        config.retention_interval,
    ));
    // Requests are answered already. Ready means the past life's runs are
    // finished too, unless the database takes long to say so.
    if !scheduler.wait_recovered(RECOVERY_PATIENCE).await {
        tracing::warn!("the runs of a past life are not finished yet; serving meanwhile");
    }
    tracing::info!(instance = %config.instance_id, tests_root = %config.tests_root.display(),
        max_parallel_runs = config.max_parallel_runs,
        runner_labels = %config.runner_labels.as_ref().map_or("(all environments)".into(), |l| l.join(",")),
        "service started");
    println!("listening on {public_url}");

    let served = server.await;
    tracing::info!("stopping: no new runs are claimed; running tests get their grace period");
    let stopping = Arc::clone(&scheduler);
    let _ = actix_web::rt::task::spawn_blocking(move || stopping.shut_down()).await;
    scheduling.abort();
    listening.abort();
    delivering.abort();
    firing.abort();
    pruning.abort();
    if let Some(rule) = health_rule {
        rule.abort();
    }
    if let Some(metrics) = metrics_serving {
        metrics.abort();
    }
    tracing::info!("stopped");
    served.map_err(|e| e.to_string())
}

/// Fires due schedules at every tick, by the database's clock (the one
/// all instances share), and wakes the scheduler for the runs queued.
async fn fire_schedules(
    pool: db::PgPool,
    tests_root: TestsRoot,
    config: Arc<Config>,
    scheduler: Arc<Scheduler>,
) {
    loop {
        let (pool, tests_root) = (pool.clone(), tests_root.clone());
        let max_queued = config.max_queued_runs;
        let fired = actix_web::rt::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            let now = db::reservations::now(&mut conn)?;
            crate::service::schedules::fire_due(&mut conn, &tests_root, max_queued, now)
        })
        .await;
        match fired {
            Ok(Ok(fired)) if fired.iter().any(|f| f.run.is_ok()) => scheduler.wake(),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot fire schedules now"),
            Err(e) => tracing::warn!(error = %e, "the schedules' tick failed"),
        }
        actix_web::rt::time::sleep(config.schedule_tick).await;
    }
}

/// Applies the automatic maintenance rule of environment health every
/// `interval`, on a blocking thread.
async fn auto_maintenance(pool: db::PgPool, interval: Duration) {
    tracing::info!(every = ?interval, "suspect environments are put into maintenance (HEALTH_AUTO_MAINTENANCE)");
    loop {
        tokio::time::sleep(interval).await;
        let pool = pool.clone();
        let checked = actix_web::rt::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            crate::service::health::apply_auto_maintenance(&mut conn).map_err(|e| e.to_string())
        })
        .await;
        match checked {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the environment health rule failed; trying again later")
            }
            Err(e) => tracing::warn!(error = %e, "the environment health rule stopped"),
        }
    }
}

/// Warns when accounts are off; otherwise makes sure the admin exists,
/// with `ADMIN_PASSWORD` or a one-time setup code for its first login.
async fn prepare_identity(pool: &db::PgPool, config: &Config) -> Result<(), String> {
    if !config.auth.enabled {
        tracing::warn!(
            "AUTH=off: no accounts; whoever reaches this service is an admin and can run \
             any code on this machine. Use it only for a single user's local setup."
        );
        return Ok(());
    }
    let (pool, auth) = (pool.clone(), config.auth.clone());
    let code = actix_web::rt::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        crate::service::identity::bootstrap(&mut conn, &auth).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    if let Some(code) = code {
        // The one secret ever logged: it is what the first visitor types,
        // and it stops working once the admin has a password.
        tracing::warn!(
            "the admin has no password yet: open the web UI and enter the one-time setup \
             code {code} (or start with ADMIN_PASSWORD set)"
        );
    }
    if config.auth.proxy_header.is_some() && config.auth.proxy_addrs.is_empty() {
        tracing::warn!(
            "AUTH_PROXY_HEADER is set but AUTH_PROXY_ADDRS is empty: the header is never trusted"
        );
    }
    Ok(())
}

/// `METRICS_BIND_ADDR`: `/metrics` alone, without credentials, on a
/// listener of its own.
fn metrics_listener(addr: &str, state: AppState) -> Result<actix_web::dev::Server, String> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on {addr} (METRICS_BIND_ADDR): {e}"))?;
    tracing::info!(%addr, "metrics served without credentials");
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .route("/metrics", web::get().to(http::routes::metrics::scrape))
    })
    .listen(listener)
    .map_err(|e| e.to_string())?
    .workers(1)
    .shutdown_timeout(1)
    .run())
}

/// How long start-up waits for the instance lock: a process of the same
/// name that just died may take a moment to lose its session.
const INSTANCE_LOCK_WAIT: Duration = Duration::from_secs(3);
/// How often the instance lock's session is checked.
const INSTANCE_LOCK_CHECK: Duration = Duration::from_secs(5);

/// Takes the lock on this instance's name, or says that another live
/// process has it.
fn take_instance_lock(database_url: &str, instance_id: &str) -> Result<InstanceLock, String> {
    let deadline = Instant::now() + INSTANCE_LOCK_WAIT;
    loop {
        if let Some(lock) = InstanceLock::try_take(database_url, instance_id)? {
            return Ok(lock);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "another live instance uses INSTANCE_ID={instance_id} on this database; \
                 give each instance its own INSTANCE_ID (two under one name would finish \
                 each other's runs)"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Holds the instance lock for the process's life, taking it again after
/// the database connection was lost.
fn keep_instance_lock(
    mut lock: InstanceLock,
    database_url: &str,
    instance_id: &str,
    runner_labels: Option<&[String]>,
) {
    loop {
        std::thread::sleep(INSTANCE_LOCK_CHECK);
        if lock.alive() {
            continue;
        }
        tracing::warn!("lost the instance lock's database session; taking it again");
        loop {
            match InstanceLock::try_take(database_url, instance_id) {
                Ok(Some(mut again)) => {
                    if let Err(e) = again.register(instance_id, runner_labels) {
                        tracing::warn!(error = %e, "cannot say again which environments this instance serves");
                    }
                    lock = again;
                    tracing::info!("instance lock taken again");
                    break;
                }
                Ok(None) => tracing::error!(
                    instance = %instance_id,
                    "another live instance took INSTANCE_ID while the database was away: \
                     the two may finish each other's runs; stop one of them"
                ),
                Err(e) => tracing::debug!(error = %e, "instance lock not taken yet"),
            }
            std::thread::sleep(INSTANCE_LOCK_CHECK);
        }
    }
}

/// Applies migrations, waiting for the database if it is still starting.
fn migrate(pool: &db::PgPool) -> Result<(), String> {
    let deadline = Instant::now() + DATABASE_WAIT;
    loop {
        match pool.get() {
            Ok(mut conn) => return db::run_migrations(&mut conn),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "waiting for the database");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(format!("the database cannot be reached: {e}")),
        }
    }
}
