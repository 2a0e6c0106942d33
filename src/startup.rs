//! Building and running the HTTP servers. [`Application::build`] binds first (port 0 picks a
//! free one, which the black-box tests rely on) and logs the address; the run then lasts
//! until a signal, then drains (see [`crate::shutdown`]).

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use ntex::SharedCfg;
use ntex::http::error::DecodeError;
use ntex::http::h1::{self, ProtocolError, control::Reason};
use ntex::http::{HttpService, HttpServiceConfig, Response, ResponseError, StatusCode};
use ntex::io::Filter;
use ntex::server::Server;
use ntex::service::fn_service;
use ntex::time::Seconds;
use ntex::web::{self, App};

use crate::clock::now_ms;
use crate::config::Settings;
use crate::connector::Connector;
use crate::error::ErrorBody;
use crate::fleet::{Member, Role};
use crate::metrics::{Metrics, Track};
use crate::routes::{self, AppState};
use crate::shutdown::{Drain, Signals};
use crate::store::Store;

/// In-flight requests get this long to finish once the drain period is over. Every Redis
/// call is bounded well under a second, so a request still running after this is stuck.
const FINISH_SECS: u16 = 3;
/// Idle connections stay open this long: longer than the proxy's own idle timeout, so it
/// is always Traefik that closes an idle connection, never a race with us. That holds for
/// a fresh connection waiting for its first request too (ntex's own limit there is 1 s,
/// then 408): Traefik pools a connection it dialed but did not need, and a request it
/// sent on one just as our 408 went out got that 408.
const KEEP_ALIVE_SECS: u16 = 75;
/// A request head (request line + headers) over this is refused with 431. ntex's default
/// (64 KiB) let a 64-70 KiB URI through to the `http` crate's own URI limit (65,534
/// bytes), which answered a bare 400. 32 KiB keeps every over-long URI in one place, and
/// Traefik's `maxHeaderBytes` (traefik/static/base.yml, every way of running) is set below
/// it, so the proxy refuses first and never forwards a head that we would drop mid-request
/// (that was its 502). `an_over_long_head_gets_431_every_time` (tests/integration/api.rs) fails at 64 KiB.
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// A bound, running HTTP server and what it needs to stop gracefully.
pub struct Application {
    server: Server,
    /// Caught before "listening" is logged: see [`Signals`].
    signals: Signals,
    drain: Drain,
    settings: Arc<Settings>,
    /// The app's fleet entry; `scaleout web` has none.
    member: Option<(Arc<Member>, Store)>,
}

impl Application {
    /// `scaleout app`: the API on every worker thread, each with its own Redis connection.
    pub fn build(settings: Settings) -> io::Result<Self> {
        let settings = Arc::new(settings);
        let metrics = Arc::new(Metrics::default());
        let drain = Drain::default();
        let listener = TcpListener::bind(settings.listen_addr)?;
        // One connector for the process, so every thread leaves an old primary as soon as
        // one of them found the new one; each thread's store has its own connections.
        let connector = Arc::new(Connector::new(&settings).map_err(io::Error::other)?);
        let (s, m, d, c) = (
            settings.clone(),
            metrics.clone(),
            drain.clone(),
            connector.clone(),
        );
        let factory = async move || {
            let store = Store::new(c.clone(), &s, m.clone());
            ntex::rt::spawn(store.clone().keep_warm());
            let state = AppState {
                store,
                settings: s.clone(),
                metrics: m.clone(),
                drain: d.clone(),
            };
            App::new()
                .state(state)
                .middleware(Track(m.clone()))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        };
        let member = Member {
            name: settings.instance_name.clone(),
            role: Role::App,
            started_at: now_ms(),
            handled: metrics.handled.clone(),
            draining: drain.flag(),
        };
        let store = Store::new(connector, &settings, metrics);
        Self::start(
            factory,
            listener,
            settings,
            drain,
            Some((Arc::new(member), store)),
        )
    }

    /// Serves the app `factory` builds (one per worker thread) on `listener`, with our own
    /// signal handling and limits, and logs the address.
    pub fn start<F, I, S, B>(
        factory: F,
        listener: TcpListener,
        settings: Arc<Settings>,
        drain: Drain,
        member: Option<(Arc<Member>, Store)>,
    ) -> io::Result<Self>
    where
        F: AsyncFn() -> I + Send + Clone + 'static,
        I: ntex::service::IntoServiceFactory<S, ntex::http::Request, SharedCfg>,
        S: ntex::service::ServiceFactory<ntex::http::Request, SharedCfg> + 'static,
        S::Error: ntex::http::ResponseError,
        S::InitError: std::fmt::Debug,
        S::Response: Into<ntex::http::Response<B>>,
        B: ntex::http::body::MessageBody + 'static,
    {
        let addr = listener.local_addr()?;
        let signals = Signals::catch()?;
        let server = ntex::server::build()
            .workers(settings.workers)
            .disable_signals()
            .shutdown_timeout(Seconds(FINISH_SECS))
            .listen("scaleout", listener, async move |cfg| {
                cfg.config(
                    SharedCfg::new("scaleout").add(
                        HttpServiceConfig::new()
                            .set_keepalive(Seconds(KEEP_ALIVE_SECS))
                            .set_client_timeout(Seconds(KEEP_ALIVE_SECS))
                            .set_max_buf_size(MAX_HEAD_BYTES),
                    ),
                );
                // HTTP/1.1 only: Traefik and every client here speak it, and the HTTP/2
                // dispatcher `HttpService::new` adds made the release binary 524 KB larger.
                HttpService::h1(factory().await).control(fn_service(json_protocol_errors))
            })?
            .run();
        tracing::info!(%addr, instance = %settings.instance_name, "listening");
        Ok(Self {
            server,
            signals,
            drain,
            settings,
            member,
        })
    }

    /// Serves until SIGTERM/SIGINT, then: `/healthz` 503 at once, keep serving for
    /// `DRAIN_SECS`, stop accepting, finish in-flight requests, leave the fleet.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let Self {
            mut server,
            mut signals,
            drain,
            settings,
            member,
            ..
        } = self;
        // The heartbeat's store follows the primary like the workers' stores do.
        let heartbeat = member.as_ref().map(|(m, store)| {
            (
                ntex::rt::spawn(m.clone().run(store.clone())),
                ntex::rt::spawn(store.clone().keep_warm()),
            )
        });
        let signal = tokio::select! {
            result = &mut server => return result,
            signal = signals.next() => signal,
        };
        drain.start();
        tracing::info!(
            signal,
            drain_secs = settings.drain_secs,
            "draining: /healthz answers 503, still serving"
        );
        if let Some((m, store)) = &member {
            let _ = m.beat(store).await;
        }
        signals.drain_period(settings.drain()).await;
        tracing::info!("drain over: closing the listener, finishing in-flight requests");
        // ntex-server 3.11 now and then misses the wake-up after its last worker stopped
        // and sits out the whole shutdown timeout: bound the wait ourselves.
        let finish = Duration::from_secs(u64::from(FINISH_SECS) + 1);
        if tokio::time::timeout(finish, server.stop(true))
            .await
            .is_err()
        {
            tracing::warn!("server did not report its stop in time; exiting anyway");
        }
        if let Some((beat, keep_warm)) = heartbeat {
            beat.cancel();
            keep_warm.cancel();
        }
        if let Some((m, store)) = &member {
            m.leave(store).await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// What the HTTP parser refuses before any route sees it (a head over [`MAX_HEAD_BYTES`],
/// a request line that is not HTTP, headers too slow to arrive) is answered like every
/// other error, `{"error": ...}` with ntex's status, instead of an empty body.
async fn json_protocol_errors<F: Filter, E: ResponseError>(
    msg: h1::Control<F, E>,
) -> io::Result<h1::ControlAck<F>> {
    let h1::Control::Disconnect(Reason::ProtocolError(err)) = msg else {
        return Ok(msg.ack());
    };
    let (status, message) = match err.err() {
        ProtocolError::Decode(DecodeError::TooLarge(_) | DecodeError::MaxHeaders) => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head (URL and headers) is too large",
        ),
        ProtocolError::Decode(DecodeError::Uri) => (StatusCode::BAD_REQUEST, "invalid URI"),
        ProtocolError::Decode(_) => (StatusCode::BAD_REQUEST, "malformed HTTP request"),
        ProtocolError::SlowRequestTimeout | ProtocolError::SlowPayloadTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "request did not arrive in time",
        ),
        _ => return Ok(err.ack()),
    };
    Ok(err.fail_with(Response::build(status).json(&ErrorBody { error: message })))
}
