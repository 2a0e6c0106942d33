//! Building and running the HTTP servers. [`Application::build`] binds first (port 0 picks a
//! free one, which the black-box tests rely on) and logs the address; the run then lasts
//! until a signal, then drains (see [`crate::shutdown`]).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use ntex::SharedCfg;
use ntex::http::HttpServiceConfig;
use ntex::server::Server;
use ntex::time::Seconds;
use ntex::web::{self, App, HttpServer};

use crate::config::Settings;
use crate::connector::Connector;
use crate::fleet::{Member, now_ms};
use crate::metrics::{Metrics, Track};
use crate::routes::{self, AppState};
use crate::shutdown::{self, Drain};
use crate::store::Store;

/// In-flight requests get this long to finish once the drain period is over. Every Redis
/// call is bounded well under a second, so a request still running after this is stuck.
const FINISH_SECS: u16 = 3;
/// Idle keep-alive connections stay open this long: longer than the proxy's own idle
/// timeout, so it is always Traefik that closes an idle connection, never a race with us.
const KEEP_ALIVE_SECS: u16 = 75;

/// A bound, running HTTP server and what it needs to stop gracefully.
pub struct Application {
    server: Server,
    addr: SocketAddr,
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
        let server = HttpServer::new(async move || {
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
        });
        let member = Member {
            name: settings.instance_name.clone(),
            role: "app",
            started_at: now_ms(),
            handled: metrics.handled.clone(),
            draining: drain.flag(),
        };
        let store = Store::new(connector, &settings, metrics);
        Self::start(
            server,
            listener,
            settings,
            drain,
            Some((Arc::new(member), store)),
        )
    }

    /// Starts `server` on `listener` with our own signal handling, and logs the address.
    pub fn start<F, I, S, B>(
        server: HttpServer<F, I, S, B>,
        listener: TcpListener,
        settings: Arc<Settings>,
        drain: Drain,
        member: Option<(Arc<Member>, Store)>,
    ) -> io::Result<Self>
    where
        F: AsyncFn() -> I + Send + Clone + 'static,
        I: ntex::service::IntoServiceFactory<S, ntex::http::Request, ntex::SharedCfg>,
        S: ntex::service::ServiceFactory<ntex::http::Request, ntex::SharedCfg> + 'static,
        S::Error: ntex::http::ResponseError,
        S::InitError: std::fmt::Debug,
        S::Response: Into<ntex::http::Response<B>>,
        B: ntex::http::body::MessageBody + 'static,
    {
        let addr = listener.local_addr()?;
        let server = server
            .listen(listener)?
            .workers(settings.workers)
            .disable_signals()
            .shutdown_timeout(Seconds(FINISH_SECS))
            .config(
                SharedCfg::new("scaleout")
                    .add(HttpServiceConfig::new().set_keepalive(Seconds(KEEP_ALIVE_SECS))),
            )
            .run();
        tracing::info!(%addr, instance = %settings.instance_name, "listening");
        Ok(Self {
            server,
            addr,
            drain,
            settings,
            member,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until SIGTERM/SIGINT, then: `/healthz` 503 at once, keep serving for
    /// `DRAIN_SECS`, stop accepting, finish in-flight requests, leave the fleet.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let Self {
            mut server,
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
            signal = shutdown::signalled() => signal,
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
        shutdown::drain_period(settings.drain()).await;
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
