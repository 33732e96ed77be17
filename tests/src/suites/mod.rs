//! The checks, one module per subject. Each check is a `pub fn(&Server)`;
//! [`crate::stages`] says which stages run it, and in which order.
//!
//! | suite          | what it checks                                              | stages     |
//! |----------------|-------------------------------------------------------------|------------|
//! | [`http`]       | HTTP/1.1: the echo, refusals, deadlines                     | 1 to 6     |
//! | [`handshake`]  | the opening handshake, and its refusals                     | 2 to 6     |
//! | [`websocket`]  | RFC 6455's rules whose answer is not an echo: close codes   | 3 to 6     |
//! | [`echo`]       | frames against an echo: lengths, fragments, split bytes     | 3, 4       |
//! | [`conformance`]| the case groups of Autobahn, smaller, against an echo       | 3, 4       |
//! | [`broadcast`]  | the group chat of stage 4                                   | 4          |
//! | [`game_loop`]  | no client waits for another, for a chat of either kind      | 4, 5, 6    |
//! | [`chat`]       | the JSON chat: names, notices, refusals                     | 5, 6       |
//! | [`idle`]       | an idle server answers at once                              | 6, 7       |
//! | [`turns`]      | clients that come and go, or flood, in a loop that touches only the ready | 7 |
//! | [`heartbeat`]  | pings to quiet clients, the silent let go, the join deadline | 8          |
//! | [`origin`]     | the `Origin` of an upgrade: 403 for another site's page      | 8          |
//! | [`limits`]     | connections (503) and messages (a token bucket) per client   | 8          |
//! | [`shutdown`]   | SIGTERM and SIGINT: 1001 for all, nothing lost, exit 0       | 8          |

pub mod broadcast;
pub mod chat;
pub mod conformance;
pub mod echo;
pub mod game_loop;
pub mod handshake;
pub mod heartbeat;
pub mod http;
pub mod idle;
pub mod limits;
pub mod origin;
pub mod shutdown;
pub mod turns;
pub mod websocket;
