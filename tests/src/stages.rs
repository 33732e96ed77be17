//! The stages, and the checks of each, in the order the grader runs them.
//!
//! A stage's checks are what its server must do: what it keeps from the
//! stages before it (a chat still does the opening handshake), then what it
//! adds, in the order the chapter teaches it (the handshake before frames,
//! short frames before 16-bit lengths before 64-bit lengths). What a stage
//! stops doing is not kept: stage 5's chat is not an echo, so the echo's
//! checks stop at stage 4.
//!
//! `cargo test` runs each stage's list against the reference stage
//! (`tests/step_03.rs`), and the grader against any server: one list, two
//! runners.

use crate::check::{Chat, Check, Spec};
use crate::checks;
use std::io;
use std::net::TcpListener;
use std::time::Duration;

/// One stage of the tutorial.
pub struct Stage {
    /// `step-03`, its package.
    pub package: &'static str,
    /// `steps/step-03-frames`.
    pub dir: &'static str,
    /// The chapter's title.
    pub title: &'static str,
    /// `ch03-frames.md`, in `book/src`.
    pub chapter: &'static str,
    /// The reference server.
    pub serve: fn(TcpListener) -> io::Result<()>,
    pub spec: Spec,
    /// Its checks, section after section.
    pub sections: &'static [&'static [Check]],
}

impl Stage {
    /// Every check, in order.
    pub fn checks(&self) -> impl Iterator<Item = &'static Check> + '_ {
        self.sections.iter().flat_map(|section| section.iter())
    }

    /// `3` for `step-03`.
    pub fn number(&self) -> usize {
        self.package["step-".len()..].parse().unwrap()
    }
}

/// The stage called `name`: `step-03`, `03` or `3`.
pub fn stage(name: &str) -> Option<&'static Stage> {
    let number: usize = name.strip_prefix("step-").unwrap_or(name).parse().ok()?;
    STAGES.into_iter().find(|stage| stage.number() == number)
}

pub const STAGES: [&Stage; 9] = [
    &STEP_01, &STEP_02, &STEP_03, &STEP_04, &STEP_05, &STEP_06, &STEP_07, &STEP_08, &STEP_09,
];

/// Stage 1: an HTTP server.
const HTTP: &[Check] = checks![
    http::echoes_a_post_like_curl_sends_it,
    http::request_arriving_one_byte_at_a_time,
    http::header_names_are_case_insensitive,
    http::a_client_that_half_closes_after_its_request_still_gets_the_answer,
    http::not_http_gets_400,
    http::huge_headers_get_431,
    http::huge_body_gets_413_before_it_is_sent,
    http::chunked_body_gets_501,
    http::ambiguous_or_invalid_heads_are_refused_and_say_why,
    http::an_http_1_0_request_needs_no_host,
    http::the_same_content_length_twice_is_one,
    http::a_tab_and_non_ascii_text_in_a_value_are_fine,
    http::a_silent_client_does_not_block_the_next_one_forever,
    http::a_trickling_client_is_cut_off_at_the_deadline,
];

/// Stage 2: the opening handshake.
const HANDSHAKE: &[Check] = checks![
    handshake::rfc_6455_handshake,
    handshake::any_key_gets_its_own_accept,
    handshake::firefox_sends_keep_alive_upgrade,
    handshake::a_frame_in_the_same_write_as_the_request_does_not_spoil_the_handshake,
    handshake::wrong_version_gets_426_with_the_version_we_speak,
    handshake::missing_version_gets_426,
    handshake::every_other_refusal_is_a_400,
    handshake::a_refused_upgrade_is_still_an_http_error,
    handshake::a_client_that_half_closes_after_a_refused_upgrade_still_gets_the_answer,
    handshake::a_client_that_half_closes_after_its_upgrade_still_gets_the_101,
    handshake::get_slash_serves_the_page,
    handshake::other_requests_are_still_echoed,
];

/// Stage 3: frames, against an echo server; in the order of chapter 3.
const FRAMES: &[Check] = checks![
    echo::echoes_a_text_message,
    echo::rfc_masked_hello_comes_back_as_rfc_unmasked_hello,
    echo::a_frame_in_three_pieces_comes_back_whole,
    websocket::an_unmasked_frame_gets_1002,
    echo::short_messages_have_a_7_bit_length,
    echo::messages_of_126_to_65535_bytes_have_a_16_bit_length,
    echo::messages_over_65535_bytes_have_a_64_bit_length,
    websocket::a_64_bit_length_with_the_top_bit_set_gets_1002,
    echo::echoes_a_binary_message,
    websocket::reserved_bits_get_1002,
    websocket::reserved_opcodes_get_1002,
    websocket::a_ping_gets_a_pong_with_the_same_payload,
    echo::a_pong_nobody_asked_for_is_ignored,
    websocket::a_fragmented_control_frame_gets_1002,
    websocket::a_control_frame_over_125_bytes_gets_1002,
    echo::fragments_are_put_together,
    echo::a_ping_between_fragments_is_answered_at_once,
    websocket::a_continuation_with_nothing_to_continue_gets_1002,
    echo::a_continuation_after_a_finished_message_gets_1002,
    websocket::a_new_message_before_the_last_one_is_finished_gets_1002,
    echo::a_text_character_split_across_fragments,
    websocket::invalid_utf8_gets_1007,
    websocket::invalid_utf8_in_a_fragment_fails_before_the_message_ends,
    echo::an_oversized_frame_gets_1009_before_its_payload_is_sent,
    echo::a_fragmented_message_over_the_limit_gets_1009,
    websocket::a_close_is_answered_with_the_same_code_then_the_server_hangs_up,
    websocket::an_empty_close_gets_an_empty_close,
    websocket::a_close_with_a_reason,
    websocket::invalid_close_codes_get_1002,
    websocket::a_close_payload_of_one_byte_gets_1002,
    websocket::a_close_reason_that_is_not_utf8_gets_1007,
    websocket::nothing_is_answered_after_the_close,
    websocket::the_server_closes_the_connection_first,
    websocket::the_server_hangs_up_cleanly_on_a_client_that_keeps_sending,
    echo::a_frame_in_the_same_write_as_the_request_is_answered,
    echo::a_frame_arriving_one_byte_at_a_time,
    echo::a_client_vanishing_mid_frame_does_not_stop_the_server,
    echo::a_client_leaving_without_a_close_frame_does_not_stop_the_server,
    echo::a_quiet_websocket_is_not_cut_off,
    websocket::the_page_shows_what_comes_back_as_text,
];

/// Stage 3's rules that do not depend on an echo: what the chat of stage 5
/// still does, in the same order.
const WEBSOCKET: &[Check] = checks![
    websocket::an_unmasked_frame_gets_1002,
    websocket::a_64_bit_length_with_the_top_bit_set_gets_1002,
    websocket::reserved_bits_get_1002,
    websocket::reserved_opcodes_get_1002,
    websocket::a_ping_gets_a_pong_with_the_same_payload,
    websocket::a_fragmented_control_frame_gets_1002,
    websocket::a_control_frame_over_125_bytes_gets_1002,
    websocket::a_continuation_with_nothing_to_continue_gets_1002,
    websocket::a_new_message_before_the_last_one_is_finished_gets_1002,
    websocket::invalid_utf8_gets_1007,
    websocket::invalid_utf8_in_a_fragment_fails_before_the_message_ends,
    websocket::a_close_is_answered_with_the_same_code_then_the_server_hangs_up,
    websocket::an_empty_close_gets_an_empty_close,
    websocket::a_close_with_a_reason,
    websocket::invalid_close_codes_get_1002,
    websocket::a_close_payload_of_one_byte_gets_1002,
    websocket::a_close_reason_that_is_not_utf8_gets_1007,
    websocket::nothing_is_answered_after_the_close,
    websocket::the_server_closes_the_connection_first,
    websocket::the_server_hangs_up_cleanly_on_a_client_that_keeps_sending,
    websocket::the_page_shows_what_comes_back_as_text,
];

/// The case groups of Autobahn|Testsuite, on a smaller scale, against an
/// echo server.
const CONFORMANCE: &[Check] = checks![
    conformance::case_1_framing,
    conformance::case_2_pings_and_pongs,
    conformance::case_3_reserved_bits,
    conformance::case_4_reserved_opcodes,
    conformance::case_5_fragmentation,
    conformance::case_6_utf8,
    conformance::case_6_4_utf8_fails_fast_per_fragment,
    conformance::case_7_1_closing_handshake,
    conformance::case_7_3_close_payloads,
    conformance::case_7_7_and_7_9_close_codes,
    conformance::case_9_limits_and_performance,
    conformance::case_10_auto_fragmentation,
];

/// Stage 4: the group chat, and the promises of the game loop: no client
/// waits for another.
const GAME_LOOP: &[Check] = checks![
    broadcast::three_clients_chat,
    game_loop::a_quiet_client_does_not_make_the_next_one_wait,
    game_loop::a_client_trickling_bytes_holds_up_nobody,
    game_loop::clients_vanishing_mid_frame_do_not_disturb_the_others,
    game_loop::one_clients_protocol_error_ends_only_its_own_connection,
    game_loop::a_client_that_never_reads_is_dropped_and_the_others_carry_on,
    game_loop::two_hundred_clients_each_get_every_message,
    game_loop::a_client_that_reads_late_still_gets_everything,
    game_loop::an_unfinished_request_is_cut_off_but_a_quiet_websocket_is_not,
];

/// Stage 5: the chat protocol, names, join and leave notices.
const CHAT: &[Check] = checks![
    chat::two_clients_join_chat_and_leave,
    chat::one_bad_message_does_not_stop_the_chat,
    chat::three_clients_and_an_abrupt_disconnect,
    chat::refusals_are_error_messages_and_the_connection_stays,
    chat::hostile_names_and_texts_travel_as_plain_text,
    chat::only_joined_clients_hear_the_chat,
    chat::a_name_is_free_again_after_its_owner_leaves,
    chat::a_message_over_the_chat_limit_gets_1009,
    chat::a_protocol_error_ends_only_that_connection,
    chat::get_slash_serves_the_chat_page,
    chat::frames_in_the_same_write_as_the_request_are_answered,
    chat::a_frame_arriving_one_byte_at_a_time,
    chat::a_ping_between_fragments_is_answered_at_once,
    chat::a_close_is_answered_with_the_same_code_then_the_server_hangs_up,
    chat::a_leave_notice_does_not_wait_for_the_leaver_to_hang_up,
    chat::nothing_after_a_close_frame_reaches_the_chat,
    chat::a_message_just_before_a_broken_rule_still_goes_round,
    chat::the_server_closes_the_connection_first,
    chat::the_server_hangs_up_cleanly_on_a_client_that_keeps_sending,
];

/// The game loop's promises again, for clients that joined the chat. A
/// client that never reads is checked with its leave notice, by
/// `chat::a_client_too_slow_to_keep_up_is_dropped_with_a_leave_notice`.
const GAME_LOOP_FOR_NAMES: &[Check] = checks![
    game_loop::a_quiet_client_does_not_make_the_next_one_wait,
    game_loop::a_client_trickling_bytes_holds_up_nobody,
    game_loop::clients_vanishing_mid_frame_do_not_disturb_the_others,
    game_loop::one_clients_protocol_error_ends_only_its_own_connection,
    chat::a_client_too_slow_to_keep_up_is_dropped_with_a_leave_notice,
    game_loop::two_hundred_clients_each_get_every_message,
    game_loop::a_client_that_reads_late_still_gets_everything,
    game_loop::an_unfinished_request_is_cut_off_but_a_quiet_websocket_is_not,
];

/// Stage 6: what poll(2) changes that a client can see.
const POLL: &[Check] = checks![idle::a_message_after_a_quiet_spell_is_answered_at_once];

/// Stage 7: a turn touches only the clients that have something.
const TURNS: &[Check] = checks![
    turns::clients_coming_and_going_get_only_their_own_messages,
    turns::a_flooding_client_holds_up_nobody,
];

/// Stage 8: a quiet client is pinged, and let go if it stays silent; a
/// WebSocket must join in time. A check of this stage knows its program
/// pings (see [`crate::client::answering_pings`]). First, so that a server
/// of stage 7 fails the first check of its new list.
const HEARTBEAT: &[Check] = checks![
    heartbeat::a_quiet_client_is_pinged_after_the_ping_interval_not_before,
    heartbeat::a_client_that_stops_answering_is_dropped_and_the_others_hear_it_leave,
    heartbeat::a_client_that_answers_pings_stays_connected,
    heartbeat::a_client_that_keeps_sending_is_never_pinged,
    heartbeat::an_unsolicited_pong_counts_as_being_alive,
    heartbeat::a_websocket_that_never_joins_gets_1008_after_the_join_timeout,
];

/// Stage 8: the Origin check.
const ORIGIN: &[Check] = checks![
    origin::a_page_from_another_origin_gets_403,
    origin::a_page_from_the_server_itself_gets_101,
    origin::a_page_from_an_allowed_origin_gets_101,
    origin::a_request_without_origin_gets_101,
];

/// Stage 8: limits on connections, and on messages.
const LIMITS: &[Check] = checks![
    limits::over_the_per_address_limit_a_newcomer_gets_503,
    limits::a_client_from_another_address_still_gets_in,
    limits::clients_under_the_limit_never_notice,
    limits::a_slot_freed_by_a_leaving_client_can_be_taken_again,
    limits::over_the_total_limit_a_newcomer_gets_503,
    limits::a_burst_of_a_whole_bucket_goes_round,
    limits::past_the_bucket_messages_are_refused_and_nobody_else_gets_them,
    limits::a_client_that_goes_on_flooding_gets_1008,
    limits::a_client_within_the_rate_is_never_refused,
];

/// Stage 8: a graceful shutdown, on a fresh instance of the program each.
const SHUTDOWN: &[Check] = checks![
    shutdown::on_sigterm_every_client_gets_1001_and_nothing_sent_is_lost,
    shutdown::on_sigint_every_client_gets_1001_and_nothing_sent_is_lost,
    shutdown::a_client_behind_on_its_reading_gets_everything_before_1001,
    shutdown::once_stopping_it_accepts_no_one,
    shutdown::clients_that_do_not_answer_the_close_keep_it_no_longer_than_the_close_timeout,
    shutdown::a_second_signal_exits_at_once,
];

const NO_LIMIT: Duration = Duration::ZERO;

pub const STEP_01: Stage = Stage {
    package: "step-01",
    dir: "steps/step-01-http-echo",
    title: "HTTP is plain text",
    chapter: "ch01-http-echo.md",
    serve: step_01::serve,
    spec: Spec {
        request_timeout: step_01::REQUEST_TIMEOUT,
        close_timeout: NO_LIMIT,
        max_message_len: 0,
        max_unsent_bytes: 0,
        chat: Chat::None,
        ..Spec::NONE
    },
    sections: &[HTTP],
};

pub const STEP_02: Stage = Stage {
    package: "step-02",
    dir: "steps/step-02-handshake",
    title: "The opening handshake",
    chapter: "ch02-handshake.md",
    serve: step_02::serve,
    spec: Spec {
        request_timeout: step_02::REQUEST_TIMEOUT,
        close_timeout: NO_LIMIT,
        max_message_len: 0,
        max_unsent_bytes: 0,
        chat: Chat::None,
        ..Spec::NONE
    },
    sections: &[HTTP, HANDSHAKE],
};

pub const STEP_03: Stage = Stage {
    package: "step-03",
    dir: "steps/step-03-frames",
    title: "Frames",
    chapter: "ch03-frames.md",
    serve: step_03::serve,
    spec: Spec {
        request_timeout: step_03::REQUEST_TIMEOUT,
        close_timeout: step_03::CLOSE_TIMEOUT,
        max_message_len: step_03::ws::MAX_MESSAGE_LEN,
        max_unsent_bytes: 0,
        chat: Chat::None,
        ..Spec::NONE
    },
    sections: &[HTTP, HANDSHAKE, FRAMES, CONFORMANCE],
};

pub const STEP_04: Stage = Stage {
    package: "step-04",
    dir: "steps/step-04-game-loop",
    title: "A game loop: every client at once",
    chapter: "ch04-game-loop.md",
    serve: step_04::serve,
    spec: Spec {
        request_timeout: step_04::REQUEST_TIMEOUT,
        close_timeout: step_04::CLOSE_TIMEOUT,
        max_message_len: step_04::ws::MAX_MESSAGE_LEN,
        max_unsent_bytes: step_04::MAX_UNSENT_BYTES,
        chat: Chat::Broadcast,
        ..Spec::NONE
    },
    sections: &[HTTP, HANDSHAKE, FRAMES, CONFORMANCE, GAME_LOOP],
};

pub const STEP_05: Stage = Stage {
    package: "step-05",
    dir: "steps/step-05-json",
    title: "Names: JSON on the wire",
    chapter: "ch05-json.md",
    serve: step_05::serve,
    spec: Spec {
        request_timeout: step_05::REQUEST_TIMEOUT,
        close_timeout: step_05::CLOSE_TIMEOUT,
        max_message_len: step_05::MAX_CHAT_MESSAGE_LEN,
        max_unsent_bytes: step_05::MAX_UNSENT_BYTES,
        chat: Chat::Json,
        ..Spec::NONE
    },
    sections: &[HTTP, HANDSHAKE, WEBSOCKET, CHAT, GAME_LOOP_FOR_NAMES],
};

pub const STEP_06: Stage = Stage {
    package: "step-06",
    dir: "steps/step-06-poll",
    title: "Sleeping until a socket is ready: poll(2)",
    chapter: "ch06-poll.md",
    serve: step_06::serve,
    spec: Spec {
        request_timeout: step_06::REQUEST_TIMEOUT,
        close_timeout: step_06::CLOSE_TIMEOUT,
        max_message_len: step_06::MAX_CHAT_MESSAGE_LEN,
        max_unsent_bytes: step_06::MAX_UNSENT_BYTES,
        chat: Chat::Json,
        ..Spec::NONE
    },
    sections: &[HTTP, HANDSHAKE, WEBSOCKET, CHAT, GAME_LOOP_FOR_NAMES, POLL],
};

pub const STEP_07: Stage = Stage {
    package: "step-07",
    dir: "steps/step-07-epoll",
    title: "epoll: a turn costs the ready sockets, not all of them",
    chapter: "ch07-epoll.md",
    serve: step_07::serve,
    spec: Spec {
        request_timeout: step_07::REQUEST_TIMEOUT,
        close_timeout: step_07::CLOSE_TIMEOUT,
        max_message_len: step_07::MAX_CHAT_MESSAGE_LEN,
        max_unsent_bytes: step_07::MAX_UNSENT_BYTES,
        chat: Chat::Json,
        ..Spec::NONE
    },
    sections: &[
        HTTP,
        HANDSHAKE,
        WEBSOCKET,
        CHAT,
        GAME_LOOP_FOR_NAMES,
        POLL,
        TURNS,
    ],
};

// ANCHOR: step_08_spec
pub const STEP_08: Stage = Stage {
    package: "step-08",
    dir: "steps/step-08-production",
    title: "A server you can leave running",
    chapter: "ch08-production.md",
    serve: step_08,
    spec: Spec {
        // What stage 7 has too: the checks kept from it use the same
        // values, so that stage 7's own code, started with the flags below
        // (which it ignores), passes them all and fails at the first new
        // check.
        request_timeout: step_08::REQUEST_TIMEOUT,
        close_timeout: step_08::CLOSE_TIMEOUT,
        max_message_len: step_08::MAX_CHAT_MESSAGE_LEN,
        max_unsent_bytes: step_08::MAX_UNSENT_BYTES,
        chat: Chat::Json,
        // Short, so that a heartbeat check takes seconds: a quiet client
        // is pinged after 1 s, and let go 6 s later. An older check's
        // client answers the pings whenever it reads (see
        // `crate::client::answering_pings`), and 7 s in all is more than
        // any of them spends without reading: chapter 4's quiet WebSocket
        // beside an unfinished request waits the request timeout (5 s) and
        // half a second.
        ping_interval: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(6),
        // Longer than any older check keeps a WebSocket without joining it
        // (a close timeout, a deadline of chapter 4, on a loaded machine).
        join_timeout: Duration::from_secs(5),
        allowed_origin: "https://chat.example",
        // Above the 200 clients of chapter 4's check, with room for
        // whatever an earlier check has not let go of yet; the total above
        // what one address may hold, so that it takes two to reach it.
        max_connections: 300,
        max_connections_per_address: 250,
        // Above what an older check sends as fast as the echoes come back
        // (chapter 4's client that never reads: about 270 big messages):
        // a whole bucket holds them all.
        max_messages_per_second: 500,
    },
    sections: &[
        HTTP,
        HANDSHAKE,
        WEBSOCKET,
        CHAT,
        GAME_LOOP_FOR_NAMES,
        POLL,
        TURNS,
        HEARTBEAT,
        ORIGIN,
        LIMITS,
        SHUTDOWN,
    ],
};

/// The configuration of stage `$stage` (8 or later) with the values of
/// `$spec`: the flags its program is started with.
macro_rules! config_of {
    ($stage:ident, $spec:expr) => {{
        let spec = $spec;
        // Stage 9 has one more field (`redis`), left as the default.
        #[allow(clippy::needless_update)]
        $stage::config::Config {
            request_timeout: spec.request_timeout,
            close_timeout: spec.close_timeout,
            ping_interval: spec.ping_interval,
            idle_timeout: spec.idle_timeout,
            join_timeout: spec.join_timeout,
            allowed_origins: vec![spec.allowed_origin.to_string()],
            max_connections: spec.max_connections,
            max_connections_per_address: spec.max_connections_per_address,
            max_messages_per_second: spec.max_messages_per_second as u32,
            ..Default::default()
        }
    }};
}

/// Stage 8's server, with the values of its spec (the flags its program
/// is started with). It stops when the other end of `stop` closes, which
/// is when this function returns: never, in a test.
fn step_08(listener: TcpListener) -> io::Result<()> {
    let (stop, _keep_running) = std::os::unix::net::UnixStream::pair()?;
    step_08::serve(listener, config_of!(step_08, STEP_08.spec), stop)
}
// ANCHOR_END: step_08_spec

/// Stage 9 without `--redis` is stage 8 exactly: the same checks, with the
/// same values. (Its chat over several servers needs a redis-server: see
/// `tests/redis.rs`, which the grader does not run.)
pub const STEP_09: Stage = Stage {
    package: "step-09",
    dir: "steps/step-09-redis",
    title: "One chat, many servers: Redis",
    chapter: "ch09-redis.md",
    serve: step_09,
    ..STEP_08
};

fn step_09(listener: TcpListener) -> io::Result<()> {
    let (stop, _keep_running) = std::os::unix::net::UnixStream::pair()?;
    step_09::serve(listener, config_of!(step_09, STEP_09.spec), stop)
}

// ANCHOR: serve_with_poll
/// Stage 7 with the interest list of macOS and the BSDs, stage 6's poll(2),
/// which Linux has too: its checks run against both, so that the fallback
/// is not untested code. (Not a stage of its own: the grader leaves it out.)
pub const STEP_07_WITH_POLL: Stage = Stage {
    serve: step_07_with_poll,
    ..STEP_07
};

fn step_07_with_poll(listener: TcpListener) -> io::Result<()> {
    step_07::serve_with(listener, step_07::poll::PollList::default())
}
// ANCHOR_END: serve_with_poll

/// The table of `tests/README.md`: how many checks of each suite each
/// stage runs.
pub fn suite_table() -> String {
    let mut suites: Vec<&str> = Vec::new();
    for stage in STAGES {
        for check in stage.checks() {
            if !suites.contains(&check.suite) {
                suites.push(check.suite);
            }
        }
    }
    let mut out = String::from("| Suite |");
    for stage in STAGES {
        out.push_str(&format!(" Stage {} |", stage.number()));
    }
    out.push_str("\n|-------|");
    for _ in STAGES {
        out.push_str("---------|");
    }
    out.push('\n');
    for suite in suites {
        out.push_str(&format!("| [`{suite}`](src/suites/{suite}.rs) |"));
        for stage in STAGES {
            let count = stage.checks().filter(|check| check.suite == suite).count();
            match count {
                0 => out.push_str(" |"),
                count => out.push_str(&format!(" {count} |")),
            }
        }
        out.push('\n');
    }
    out.push_str("| all |");
    for stage in STAGES {
        out.push_str(&format!(" **{}** |", stage.checks().count()));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::STAGES;
    use crate::report::{heading, repo_root};
    use std::collections::BTreeSet;

    /// The checks written in `tests/src/suites`, as `suite::name`.
    fn written() -> BTreeSet<String> {
        let dir = repo_root().join("tests/src/suites");
        let mut found = BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let suite = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("\npub fn ").skip(1) {
                let Some((name, rest)) = piece.split_once('(') else {
                    continue;
                };
                let parameters = rest.split_once(')').map_or("", |(inside, _)| inside);
                if parameters.trim().trim_end_matches(',') == "server: &Server" {
                    found.insert(format!("{suite}::{name}"));
                }
            }
        }
        found
    }

    /// `tests/README.md` shows the table that the lists above make.
    #[test]
    fn the_readme_shows_which_suite_runs_against_which_stage() {
        let readme = std::fs::read_to_string(repo_root().join("tests/README.md")).unwrap();
        let table = super::suite_table();
        assert!(
            readme.contains(&table),
            "tests/README.md should hold this table, made from tests/src/stages.rs:\n\n{table}"
        );
    }

    /// A stage's file runs its checks itself (`harness = false`), so a
    /// `#[test]` written there would never run: say so, rather than let it
    /// pass in silence.
    #[test]
    fn the_stage_files_hold_no_test_that_would_never_run() {
        for number in 1..=8 {
            let path = repo_root().join(format!("tests/step_0{number}.rs"));
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains("#[test]"),
                "{}: a #[test] here never runs (the file's main runs the stage's checks). \
                 Write it as `fn name(server: &Server)` and list it in `reference_checks![...]` \
                 in this file, or put it in a suite of tests/src/suites and in the stage's list \
                 in tests/src/stages.rs, where the grader runs it too.",
                path.display()
            );
        }
    }

    /// A check that no stage lists is run by nobody.
    #[test]
    fn every_check_is_in_a_stage() {
        let listed: BTreeSet<String> = STAGES
            .iter()
            .flat_map(|stage| stage.checks().map(|check| check.id()))
            .collect();
        let written = written();
        let missing: Vec<&String> = written.difference(&listed).collect();
        assert!(missing.is_empty(), "checks that no stage runs: {missing:?}");
    }

    /// No stage runs a check twice.
    #[test]
    fn no_stage_lists_a_check_twice() {
        for stage in STAGES {
            let mut seen = BTreeSet::new();
            for check in stage.checks() {
                assert!(
                    seen.insert(check.id()),
                    "{} twice in {}",
                    check.id(),
                    stage.package
                );
            }
        }
    }

    /// Every book section a check names (`about(..., "ch03-frames.md#limits")`)
    /// is a heading of that chapter: a failure's report must not point to a
    /// section that has moved.
    #[test]
    fn every_book_section_a_check_names_exists() {
        let dir = repo_root().join("tests/src/suites");
        let mut problems = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split('"').skip(1).step_by(2) {
                if let Some((file, anchor)) = piece.split_once(".md#")
                    && file.starts_with("ch")
                    && heading(&format!("{file}.md"), anchor).is_none()
                {
                    problems.push(format!("{}: {piece}", path.display()));
                }
            }
        }
        assert!(problems.is_empty(), "no such heading: {problems:#?}");
    }
}
