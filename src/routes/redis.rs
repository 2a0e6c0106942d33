//! `GET /redis`: the Redis tier as this replica sees it, for the dashboard's Redis panel:
//! the mode, the primary it follows, that primary's replicas with their lag, the
//! Sentinels, and the last failover it followed. Always 200 while the process runs: during
//! a failover, showing that there is no primary is the point.

use ntex::web::{HttpResponse, types::State};
use serde::Serialize;

use super::{AppState, ok};
use crate::connector::Mode;

/// The body of `GET /redis`.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "RedisTier"))]
pub(super) struct Tier<'a> {
    served_by: &'a str,
    mode: Mode,
    /// The primary's name at the Sentinels; null standalone.
    master_name: Option<String>,
    /// `host:port`, or null while no primary is known (mid-failover).
    primary: Option<String>,
    primary_reachable: bool,
    /// `ROLE` said master at the answering replica's last check.
    on_primary: bool,
    replicas: Vec<Replica>,
    sentinels: Vec<Sentinel>,
    /// When the answering replica last switched primary (unix ms); null if never.
    last_failover_ms: Option<u64>,
    /// `REDIS_WAIT_REPLICAS`: replicas each write waits for (0: off).
    wait_replicas: u32,
}

/// A configured Sentinel and whether it answered a PING.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "RedisSentinel"))]
pub(super) struct Sentinel {
    addr: String,
    up: bool,
}

/// One replica, from the primary's `INFO replication`.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "RedisReplica"))]
pub(super) struct Replica {
    addr: String,
    /// `online`, `wait_bgsave`, `send_bulk`: as Redis says.
    state: String,
    /// How far behind the primary's replication offset it is, in bytes.
    lag_bytes: u64,
    /// Seconds since its last acknowledgement.
    lag_secs: u64,
}

pub async fn tier(state: State<AppState>) -> HttpResponse {
    let connector = state.store.connector();
    let view = connector.view();
    let replicas = state
        .store
        .replication_info()
        .await
        .ok()
        .map(|info| replicas(&info));
    let sentinels = connector
        .sentinels_up()
        .await
        .into_iter()
        .map(|(addr, up)| Sentinel { addr, up })
        .collect();
    ok(&Tier {
        served_by: state.instance(),
        mode: view.mode,
        master_name: view.master_name,
        primary: view.primary,
        primary_reachable: replicas.is_some(),
        on_primary: view.on_primary,
        replicas: replicas.unwrap_or_default(),
        sentinels,
        last_failover_ms: view.last_switch_ms,
        wait_replicas: state.settings.redis_wait_replicas,
    })
}

/// The replicas listed in an `INFO replication` reply (`slave0:ip=…,port=…,state=…,
/// offset=…,lag=…`), lag counted from its `master_repl_offset`.
fn replicas(info: &str) -> Vec<Replica> {
    let field = |line: &str, name: &str| {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
            .to_string()
    };
    let master_offset: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    info.lines()
        .filter(|l| l.starts_with("slave") && l.contains(":ip="))
        .filter_map(|l| l.split_once(':').map(|(_, rest)| rest.trim()))
        .map(|l| Replica {
            addr: format!("{}:{}", field(l, "ip"), field(l, "port")),
            state: field(l, "state"),
            lag_bytes: master_offset.saturating_sub(field(l, "offset").parse().unwrap_or(0)),
            lag_secs: field(l, "lag").parse().unwrap_or(0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_replicas_from_info() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=7001,state=online,offset=990,lag=0\r\n\
            slave1:ip=redis-2,port=6379,state=wait_bgsave,offset=0,lag=3\r\n\
            master_failover_state:no-failover\r\nmaster_repl_offset:1000\r\n";
        assert_eq!(
            replicas(info),
            [
                Replica {
                    addr: "127.0.0.1:7001".into(),
                    state: "online".into(),
                    lag_bytes: 10,
                    lag_secs: 0
                },
                Replica {
                    addr: "redis-2:6379".into(),
                    state: "wait_bgsave".into(),
                    lag_bytes: 1000,
                    lag_secs: 3
                },
            ]
        );
    }
}
