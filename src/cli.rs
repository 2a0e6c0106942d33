//! Command-line entry: parses the subcommand, reads the settings, starts logging, runs.
//! Exit status 2 means bad usage or configuration, 1 a failure at run time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use crate::config::Settings;
use crate::startup::Application;
use crate::{healthcheck, load, telemetry, web};

const USAGE: &str = "\
scaleout: a stateful web app that scales out, all state in Redis

Usage: scaleout <command> [options]

Commands:
  app                  the HTTP API (run N of these behind Traefik)
  worker               the job consumer: a reliable queue in Redis (run any number)
  web                  the dashboard's static files from WEB_ROOT
  load --url URL ...   load generator that checks sessions (see load --help)
  healthcheck [URL]    exit 0 if URL answers 200 [/healthz on LISTEN_ADDR, 0.0.0.0 as 127.0.0.1]

Run `scaleout <command> --help` for a command's options and settings.";

/// Each command's usage line, shown above the settings table by `<command> --help`.
fn usage(command: &str) -> Option<&'static str> {
    Some(match command {
        "app" => "Usage: scaleout app\n\nServes the HTTP API on LISTEN_ADDR.",
        "worker" => {
            "Usage: scaleout worker\n\nProcesses jobs from the Redis list `jobs`; SIGTERM finishes the current job, then exits."
        }
        "web" => "Usage: scaleout web\n\nServes the built dashboard from WEB_ROOT on LISTEN_ADDR.",
        "healthcheck" => {
            "Usage: scaleout healthcheck [URL]\n\nGETs URL (default: /healthz on LISTEN_ADDR, a wildcard host as loopback) and exits 0 on 200."
        }
        _ => return None,
    })
}

pub async fn run() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().map(String::as_str) else {
        println!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    match command {
        "--help" | "-h" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "--version" | "-V" => {
            println!("scaleout {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    if command == "load" {
        return load_command(rest).await;
    }
    let Some(usage) = usage(command) else {
        eprintln!("scaleout: unknown command '{command}'\n\n{USAGE}");
        return ExitCode::from(2);
    };
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", Settings::help(usage));
        return ExitCode::SUCCESS;
    }
    // Settings come from the environment only; an argument is a mistake to report, not to
    // ignore (`app --port 9000` must not quietly serve on 8080). Only healthcheck takes one.
    let allowed = usize::from(command == "healthcheck");
    if let Some((_, arg)) = rest
        .iter()
        .enumerate()
        .find(|(i, arg)| *i >= allowed || arg.starts_with('-'))
    {
        eprintln!("scaleout {command}: unexpected argument '{arg}'\n\n{usage}");
        return ExitCode::from(2);
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scaleout: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if command == "healthcheck" {
        return check_health(&settings, rest.first()).await;
    }
    telemetry::init(&settings);
    let result = match command {
        "app" => match Application::build(settings) {
            Ok(app) => app.run_until_stopped().await,
            Err(e) => Err(e),
        },
        "worker" => crate::jobs::worker::run(settings)
            .await
            .map_err(std::io::Error::other),
        "web" => match web::build(settings) {
            Ok(server) => server.run_until_stopped().await,
            Err(e) => Err(e),
        },
        _ => unreachable!("usage() knows every command"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{command} failed");
            ExitCode::FAILURE
        }
    }
}

/// `scaleout load`: takes flags, not settings; prints the report; 1 if anything failed.
async fn load_command(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", load::USAGE);
        return ExitCode::SUCCESS;
    }
    let opts = match load::Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scaleout load: {e}\n\n{}", load::USAGE);
            return ExitCode::from(2);
        }
    };
    let json = opts.json;
    let report = load::run(opts).await;
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report serializes")
        );
        if !report.passed() {
            eprintln!("scaleout load: {}", report.verdict());
        }
    } else {
        println!("{}", report.human());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn check_health(settings: &Settings, url: Option<&String>) -> ExitCode {
    let url = url
        .cloned()
        .unwrap_or_else(|| format!("http://{}/healthz", probe_addr(settings.listen_addr)));
    match healthcheck::probe(&url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where `healthcheck` finds a server listening on `listen`: that very address, unless it is
/// a wildcard (0.0.0.0, ::), which cannot be connected to: then loopback of the same family.
fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::probe_addr;

    #[test]
    fn healthcheck_probes_the_listen_host_unless_wildcard() {
        for (listen, probed) in [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:8080", "[::1]:8080"),
            ("10.1.2.3:9000", "10.1.2.3:9000"),
            ("[fd00::1]:80", "[fd00::1]:80"),
        ] {
            assert_eq!(probe_addr(listen.parse().unwrap()).to_string(), probed);
        }
    }
}
