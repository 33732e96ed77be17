//! What an operator can change without changing the code: every limit and
//! every time of stage 8 is a named constant here, and a flag of the same
//! name on the command line (`step-09 --help` lists them). The tests start
//! the server with short times, so that a heartbeat check takes seconds,
//! not minutes. Stage 9 adds one flag, `--redis HOST:PORT`: without it, the
//! server is stage 8's, alone; with it, one chat with every server that
//! uses the same Redis (see [`crate::broker`]).

use std::time::Duration;

// ANCHOR: defaults
/// How long a client may take to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long we wait, after our close frame, for the client to close too.
/// On a shutdown, the longest we wait for all of them.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a client may send nothing before we ping it. Browsers answer a
/// ping by themselves, even in a background tab, so a quiet page that is
/// still there answers; a client whose network has vanished does not.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

/// How long after the ping we wait for the pong (or for anything else)
/// before we decide the client is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a WebSocket may stay in the chat without joining it.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The most connections we hold at once. Each costs a file descriptor and
/// some memory; past this, a newcomer is told 503 and to come back later.
pub const MAX_CONNECTIONS: usize = 10_000;

/// The most connections from one address: a single machine cannot take all
/// the room. (A whole office behind one router shares one address, which is
/// why this is not 1.)
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 100;

/// The most chat messages a client may send in a second, on average; as
/// many may come at once, after a quiet second (a "token bucket").
pub const MAX_MESSAGES_PER_SECOND: u32 = 10;
// ANCHOR_END: defaults

// ANCHOR: config
/// Every value an operator can change, as the command line left it.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub request_timeout: Duration,
    pub close_timeout: Duration,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub join_timeout: Duration,
    /// Origins whose pages may open a WebSocket, besides the server's own
    /// (`http://chat.example`: scheme, host and port, as browsers send it).
    pub allowed_origins: Vec<String>,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub max_messages_per_second: u32,
    /// Where Redis is (`HOST:PORT`), if the chat spans several servers:
    /// looked up once, when the server starts (see [`crate::serve`]).
    pub redis: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            request_timeout: REQUEST_TIMEOUT,
            close_timeout: CLOSE_TIMEOUT,
            ping_interval: PING_INTERVAL,
            idle_timeout: IDLE_TIMEOUT,
            join_timeout: JOIN_TIMEOUT,
            allowed_origins: Vec::new(),
            max_connections: MAX_CONNECTIONS,
            max_connections_per_address: MAX_CONNECTIONS_PER_ADDRESS,
            max_messages_per_second: MAX_MESSAGES_PER_SECOND,
            redis: None,
        }
    }
}
// ANCHOR_END: config

/// What `--help` prints.
pub const USAGE: &str = "\
usage: step-09 [ADDRESS] [OPTIONS]

Serves the chat on ADDRESS (default 127.0.0.1:8080; port 0 picks a free port).
SIGINT (Ctrl-C) or SIGTERM closes every WebSocket with 1001 and exits.
With --redis, every server that uses the same Redis is one chat, and they
may share one ADDRESS (SO_REUSEPORT): the system spreads the clients.

options (SECONDS may have a fraction: 0.5):
  --ping-interval SECONDS           ping a client that sent nothing this long (30)
  --idle-timeout SECONDS            then close it if it still sends nothing (30)
  --join-timeout SECONDS            close a WebSocket that has not joined by then (30)
  --request-timeout SECONDS         the most a client may take to send a request (5)
  --close-timeout SECONDS           how long to wait for a client's close frame (2)
  --allow-origin ORIGIN             also accept pages from ORIGIN, such as
                                    https://chat.example (may be repeated)
  --max-connections N               connections held at once, in all (10000)
  --max-connections-per-address N   connections held at once from one address (100)
  --max-messages-per-second N       chat messages a client may send a second (10)
  --redis HOST:PORT                 one chat with every server using this Redis,
                                    such as 127.0.0.1:6379 (none: this server alone)
  -h, --help                        print this and exit";

// ANCHOR: parse
/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Serve on this address, with this configuration.
    Serve { address: String, config: Config },
    /// Print [`USAGE`].
    Help,
}

/// Reads the arguments after the program's name; the error says which one
/// is wrong, for a message above [`USAGE`].
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut address = None;
    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if !arg.starts_with("--") {
            if address.replace(arg.clone()).is_some() {
                return Err(format!("one address only: {arg:?} is a second one"));
            }
            continue;
        }
        let Some(value) = args.next() else {
            return Err(format!("{arg} needs a value"));
        };
        match arg.as_str() {
            "--ping-interval" => config.ping_interval = seconds(&arg, &value)?,
            "--idle-timeout" => config.idle_timeout = seconds(&arg, &value)?,
            "--join-timeout" => config.join_timeout = seconds(&arg, &value)?,
            "--request-timeout" => config.request_timeout = seconds(&arg, &value)?,
            "--close-timeout" => config.close_timeout = seconds(&arg, &value)?,
            "--allow-origin" => config.allowed_origins.push(value),
            "--max-connections" => config.max_connections = count(&arg, &value)?,
            "--max-connections-per-address" => {
                config.max_connections_per_address = count(&arg, &value)?;
            }
            "--max-messages-per-second" => {
                config.max_messages_per_second = count(&arg, &value)?;
            }
            "--redis" => config.redis = Some(host_and_port(&arg, &value)?),
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    let address = address.unwrap_or("127.0.0.1:8080".to_string());
    Ok(Command::Serve { address, config })
}

/// `0.5` for half a second: more than 0, less than a year.
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds < 365.0 * 24.0 * 3600.0 => {
            Ok(Duration::from_secs_f64(seconds))
        }
        _ => Err(format!(
            "{flag} takes a number of seconds, such as 30 or 0.5, not {value:?}"
        )),
    }
}

/// A whole number, at least 1.
fn count<T: std::str::FromStr + PartialOrd + From<u8>>(
    flag: &str,
    value: &str,
) -> Result<T, String> {
    match value.parse::<T>() {
        Ok(count) if count >= T::from(1) => Ok(count),
        _ => Err(format!(
            "{flag} takes a whole number, at least 1, not {value:?}"
        )),
    }
}

/// `HOST:PORT`, such as `127.0.0.1:6379` or `redis.internal:6379`: only its
/// form is checked here; the name is looked up when the server starts.
fn host_and_port(flag: &str, value: &str) -> Result<String, String> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(value.to_string())
        }
        _ => Err(format!(
            "{flag} takes HOST:PORT, such as 127.0.0.1:6379, not {value:?}"
        )),
    }
}
// ANCHOR_END: parse

// ANCHOR: tests
#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn no_arguments_serve_the_defaults_on_port_8080() {
        let expected = Command::Serve {
            address: "127.0.0.1:8080".to_string(),
            config: Config::default(),
        };
        assert_eq!(parse_line(""), Ok(expected));
    }

    #[test]
    fn every_flag_changes_its_value() {
        let line = "0.0.0.0:80 --ping-interval 0.5 --idle-timeout 2 --join-timeout 3 \
                    --request-timeout 4 --close-timeout 1.5 --allow-origin http://a.example \
                    --allow-origin https://b.example --max-connections 7 \
                    --max-connections-per-address 3 --max-messages-per-second 20 \
                    --redis redis.internal:6380";
        let Ok(Command::Serve { address, config }) = parse_line(line) else {
            panic!("not parsed");
        };
        assert_eq!(address, "0.0.0.0:80");
        let expected = Config {
            request_timeout: Duration::from_secs(4),
            close_timeout: Duration::from_millis(1500),
            ping_interval: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(2),
            join_timeout: Duration::from_secs(3),
            allowed_origins: vec!["http://a.example".into(), "https://b.example".into()],
            max_connections: 7,
            max_connections_per_address: 3,
            max_messages_per_second: 20,
            redis: Some("redis.internal:6380".to_string()),
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse_line("--max-connections 3 --help"), Ok(Command::Help));
        assert_eq!(parse_line("-h"), Ok(Command::Help));
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        let cases = [
            ("--ping-interval", "--ping-interval needs a value"),
            (
                "--ping-interval 0",
                "--ping-interval takes a number of seconds, such as 30 or 0.5, not \"0\"",
            ),
            (
                "--idle-timeout NaN",
                "--idle-timeout takes a number of seconds, such as 30 or 0.5, not \"NaN\"",
            ),
            (
                "--max-connections -1",
                "--max-connections takes a whole number, at least 1, not \"-1\"",
            ),
            (
                "--max-messages-per-second 0",
                "--max-messages-per-second takes a whole number, at least 1, not \"0\"",
            ),
            (
                "--redis localhost",
                "--redis takes HOST:PORT, such as 127.0.0.1:6379, not \"localhost\"",
            ),
            (
                "--redis :6379",
                "--redis takes HOST:PORT, such as 127.0.0.1:6379, not \":6379\"",
            ),
            ("--verbose 1", "unknown option --verbose"),
            ("a:1 b:2", "one address only: \"b:2\" is a second one"),
        ];
        for (line, error) in cases {
            assert_eq!(parse_line(line), Err(error.to_string()), "{line}");
        }
    }
}
// ANCHOR_END: tests
