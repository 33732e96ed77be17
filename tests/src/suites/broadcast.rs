//! The group chat of stage 4, over real TCP: every text message goes to
//! every client, the sender too.

use crate::*;

// ANCHOR: three_clients_chat
/// Three people chat; one leaves; the others go on. Each line of the
/// transcript is one client sending (`->`) or receiving (`<-`).
pub fn three_clients_chat(server: &Server) {
    about(
        "RFC 6455, section 6 (sending and receiving data)",
        "ch04-game-loop.md#the-loop",
    );
    let mut chat = Transcript::new();
    let mut clients: Vec<Conn> = (0..3).map(|_| ws_handshake(server.address)).collect();
    say(&mut chat, &mut clients, 0, "hi all");
    say(&mut chat, &mut clients, 1, "hi ann");
    say(&mut chat, &mut clients, 2, "bye!");
    let mut cat = clients.pop().unwrap();
    close_with(&mut cat, 1000);
    chat.note("cat closes, and is gone");
    say(&mut chat, &mut clients, 0, "just us now");
    chat.keep();
}

/// Client `from` sends `text`; every client reads what arrives next, which
/// must be that text.
#[track_caller]
fn say(chat: &mut Transcript, clients: &mut [Conn], from: usize, text: &str) {
    let names = ["ann", "bob", "cat"];
    chat.send_text(names[from], &mut clients[from], text);
    for (to, client) in clients.iter_mut().enumerate() {
        let heard = chat.receive(names[to], client);
        assert!(
            heard.opcode == TEXT && heard.payload == text.as_bytes(),
            "every client gets every message, the sender too: {} should get {text:?} \
             from {}, but got {heard:?}",
            names[to],
            names[from]
        );
    }
}
// ANCHOR_END: three_clients_chat
