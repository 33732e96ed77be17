//! Every client, by token, and what the loop keeps about each so that a
//! turn looks at the clients it must, and at no others.
//!
//! Stage 6 kept its clients in a `Vec` and went through all of them, every
//! turn, several times: to build `poll`'s array, to find the nearest
//! deadline, to flush, to drop the closed ones, to add up their memory,
//! and (in the chat) to find who joined. With epoll, the system no longer
//! needs the list, so those walks are all that is left of the cost of ten
//! thousand quiet clients. Here is what replaces each of them:
//!
//! - a *slab*: client `token` lives in slot `token`, found at once from an
//!   event's token, and a slot is reused once its client has gone;
//! - the clients this turn *touched*, those it lent out for changing
//!   (`clients[token]` on a `&mut Clients`): only they can have something
//!   to write, a new interest, a new deadline, new memory, or be leaving;
//! - the deadlines in order, so the nearest is the first;
//! - the memory of all the buffers, kept up to date as clients change;
//! - the members of the chat, in the order they joined.

use crate::client::Client;
use crate::interest::{Interest, InterestList, Token};
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::IpAddr;
use std::ops::{Index, IndexMut};
use std::os::fd::AsFd;
use std::time::Instant;

// ANCHOR: clients
/// Every client, in a slot of its own: see the top of this file.
#[derive(Default)]
pub struct Clients {
    /// Slot `token` holds the client with that token, if it is still here.
    slots: Vec<Option<Slot>>,
    /// Slots whose client has gone, for the next clients to take.
    free: Vec<Token>,
    /// The clients that joined the chat, in the order they joined.
    members: Vec<Token>,
    /// The clients lent out for changing since the last [`Clients::end_turn`].
    touched: Vec<Token>,
    /// Every client's deadline, nearest first.
    deadlines: BTreeSet<(Instant, Token)>,
    /// What all the clients' buffers held when last counted.
    memory: usize,
    /// The connections we serve (not those we are turning away), and how
    /// many of them come from each address.
    connections: usize,
    connections_from: HashMap<IpAddr, usize>,
}

/// A client, and what the loop last recorded about it.
struct Slot {
    client: Client,
    /// What the interest list waits for on its socket.
    interest: Interest,
    /// Its entry in `deadlines`.
    deadline: Option<Instant>,
    /// Its part of `memory`.
    memory: usize,
    /// Whether it is on the `touched` list.
    touched: bool,
    /// Whether it counts in `connections`: it is not being turned away.
    counted: bool,
}
// ANCHOR_END: clients

impl Clients {
    // ANCHOR: insert
    /// Takes a new client into a free slot, and adds its socket to the
    /// interest list with the slot's number as its token.
    pub fn insert(&mut self, client: Client, sockets: &mut impl InterestList) -> io::Result<Token> {
        let token = self.free.pop().unwrap_or(self.slots.len());
        let interest = client.interest();
        if let Err(error) = sockets.add(client.as_fd(), token, interest) {
            self.free.push(token);
            return Err(error); // the client is dropped, its socket closed
        }
        let deadline = client.deadline();
        if let Some(deadline) = deadline {
            self.deadlines.insert((deadline, token));
        }
        let memory = client.memory();
        self.memory += memory;
        // A client turned away at the door is closing already: it has its
        // answer, and takes nobody's place.
        let counted = !client.is_closing();
        if counted {
            self.connections += 1;
            *self.connections_from.entry(client.peer.ip()).or_default() += 1;
        }
        let slot = Slot {
            client,
            interest,
            deadline,
            memory,
            touched: false,
            counted,
        };
        if token == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[token] = Some(slot);
        }
        Ok(token)
    }
    // ANCHOR_END: insert

    // ANCHOR: flush
    /// Writes what the clients this turn touched have waiting, and no more:
    /// a client that turns out to be gone stays until [`Clients::end_turn`],
    /// so that its departure can still be announced.
    pub fn flush(&mut self) {
        for &token in &self.touched {
            let slot = self.slots[token].as_mut();
            slot.expect("a touched client is here").client.flush();
        }
    }
    // ANCHOR_END: flush

    // ANCHOR: end_turn
    /// The end of a turn, for each client the turn touched: writes what it
    /// has waiting, then brings up to date what the loop knows of it (what
    /// the interest list waits for, its deadline, its memory), or, if it is
    /// closed, lets it go. The clients the turn did not touch are as they
    /// were: nothing to write, nothing changed.
    pub fn end_turn(&mut self, sockets: &mut impl InterestList) {
        for token in std::mem::take(&mut self.touched) {
            let slot = self.slots[token]
                .as_mut()
                .expect("a touched client is here");
            slot.touched = false;
            slot.client.flush();
            self.memory = self.memory - slot.memory + slot.client.memory();
            slot.memory = slot.client.memory();
            if slot.client.is_closed() {
                self.remove(token, sockets);
                continue;
            }
            let interest = slot.client.interest();
            if interest != slot.interest {
                // One system call, only when it changes: when output starts
                // to wait, and when it is all out.
                if let Err(error) = sockets.modify(slot.client.as_fd(), token, interest) {
                    log!("{}: cannot wait for its socket: {error}", slot.client.peer);
                    self.remove(token, sockets);
                    continue;
                }
                slot.interest = interest;
            }
            let deadline = slot.client.deadline();
            if deadline != slot.deadline {
                if let Some(old) = slot.deadline {
                    self.deadlines.remove(&(old, token));
                }
                if let Some(new) = deadline {
                    self.deadlines.insert((new, token));
                }
                slot.deadline = deadline;
            }
        }
    }

    /// Lets a client go: its socket leaves the interest list, then closes
    /// (dropping a `TcpStream` closes it), and its slot is free again.
    fn remove(&mut self, token: Token, sockets: &mut impl InterestList) {
        let slot = self.slots[token].take().expect("a removed client was here");
        // Closing the socket would take it off the list too, but only if no
        // other descriptor shares it (`dup`, `try_clone`): say it ourselves.
        if let Err(error) = sockets.delete(slot.client.as_fd()) {
            log!("{}: cannot stop waiting for it: {error}", slot.client.peer);
        }
        if let Some(deadline) = slot.deadline {
            self.deadlines.remove(&(deadline, token));
        }
        self.memory -= slot.memory;
        if slot.counted {
            self.connections -= 1;
            let ip = slot.client.peer.ip();
            let from_there = self.connections_from.get_mut(&ip).expect("counted");
            *from_there -= 1;
            if *from_there == 0 {
                self.connections_from.remove(&ip);
            }
        }
        self.members.retain(|&member| member != token);
        self.free.push(token);
    }
    // ANCHOR_END: end_turn

    // ANCHOR: connections
    /// How many connections we serve, from everywhere.
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// How many connections we serve from this address.
    pub fn connections_from(&self, ip: IpAddr) -> usize {
        self.connections_from.get(&ip).copied().unwrap_or(0)
    }

    /// How many clients we are turning away: here, but not counted.
    pub fn turning_away(&self) -> usize {
        self.slots.len() - self.free.len() - self.connections
    }

    /// Every client's token, for a turn that must look at all of them.
    pub fn tokens(&self) -> Vec<Token> {
        self.iter().map(|(token, _)| token).collect()
    }

    /// Whether every client has gone.
    pub fn is_empty(&self) -> bool {
        self.slots.len() == self.free.len()
    }
    // ANCHOR_END: connections

    // ANCHOR: deadlines
    /// The nearest deadline of all.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// The clients whose deadline has come, nearest first.
    pub fn due(&self, now: Instant) -> Vec<Token> {
        let due = self
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now);
        due.map(|&(_, token)| token).collect()
    }
    // ANCHOR_END: deadlines

    // ANCHOR: memory
    /// What all the clients' buffers hold now. Only the clients this turn
    /// touched can hold something else than when last counted.
    pub fn memory(&mut self) -> usize {
        for &token in &self.touched {
            let slot = self.slots[token]
                .as_mut()
                .expect("a touched client is here");
            self.memory = self.memory - slot.memory + slot.client.memory();
            slot.memory = slot.client.memory();
        }
        self.memory
    }

    /// Every client, with its token.
    pub fn iter(&self) -> impl Iterator<Item = (Token, &Client)> {
        let slots = self.slots.iter().enumerate();
        slots.filter_map(|(token, slot)| Some((token, &slot.as_ref()?.client)))
    }
    // ANCHOR_END: memory

    // ANCHOR: members
    /// `client[token]` takes a name and joins the chat.
    pub fn join(&mut self, token: Token, name: String) {
        self[token].name = Some(name);
        self.members.push(token);
    }

    /// `client[token]` leaves the chat: returns its name, once.
    pub fn leave(&mut self, token: Token) -> Option<String> {
        let name = self[token].name.take()?;
        self.members.retain(|&member| member != token);
        Some(name)
    }

    /// The clients in the chat, in the order they joined.
    pub fn members(&self) -> impl Iterator<Item = &Client> {
        self.members.iter().map(|&token| &self[token])
    }

    /// Lends out each client in the chat for changing, with its token.
    pub fn for_each_member(&mut self, mut act: impl FnMut(Token, &mut Client)) {
        for &token in &self.members {
            act(token, touch(&mut self.slots, &mut self.touched, token));
        }
    }

    /// The clients lent out for changing since the turn began.
    pub fn touched(&self) -> Vec<Token> {
        self.touched.clone()
    }
    // ANCHOR_END: members
}

// ANCHOR: index
impl Clients {
    /// Whether a client has this token now. An answer from Redis may come
    /// for a client that has gone since it asked.
    pub fn contains(&self, token: Token) -> bool {
        self.slots.get(token).is_some_and(Option::is_some)
    }
}

impl Index<Token> for Clients {
    type Output = Client;

    /// The client with this token. There is always one: a token is only
    /// ever used while its client is here (see `end_turn`).
    fn index(&self, token: Token) -> &Client {
        let slot = self.slots[token].as_ref();
        &slot.expect("no client has this token").client
    }
}

impl IndexMut<Token> for Clients {
    /// The client with this token, lent out for changing: the end of the
    /// turn will look at it again.
    fn index_mut(&mut self, token: Token) -> &mut Client {
        touch(&mut self.slots, &mut self.touched, token)
    }
}

/// Marks the client touched (once a turn) and lends it out.
fn touch<'a>(
    slots: &'a mut [Option<Slot>],
    touched: &mut Vec<Token>,
    token: Token,
) -> &'a mut Client {
    let slot = slots[token].as_mut().expect("no client has this token");
    if !slot.touched {
        slot.touched = true;
        touched.push(token);
    }
    &mut slot.client
}
// ANCHOR_END: index

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::LIMITS;
    use crate::interest::Event;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
    use std::time::Duration;

    /// An interest list that only writes down what it is asked.
    #[derive(Default)]
    struct Recorded(Vec<String>);

    impl InterestList for Recorded {
        fn add(&mut self, socket: BorrowedFd, token: Token, _: Interest) -> io::Result<()> {
            self.0
                .push(format!("add {} as {token}", socket.as_raw_fd()));
            Ok(())
        }
        fn modify(&mut self, socket: BorrowedFd, token: Token, _: Interest) -> io::Result<()> {
            self.0
                .push(format!("modify {} as {token}", socket.as_raw_fd()));
            Ok(())
        }
        fn delete(&mut self, socket: BorrowedFd) -> io::Result<()> {
            self.0.push(format!("delete {}", socket.as_raw_fd()));
            Ok(())
        }
        fn wait(&mut self, _: &mut Vec<Event>, _: Option<Duration>) -> io::Result<()> {
            unreachable!()
        }
    }

    /// A client on the server's end of a fresh loopback connection, its
    /// descriptor, and the other end (which must stay open).
    fn client() -> (Client, RawFd, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let far = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (near, peer) = listener.accept().unwrap();
        let fd = near.as_raw_fd();
        (Client::new(near, peer, LIMITS).unwrap(), fd, far)
    }

    // ANCHOR: slot_test
    #[test]
    fn a_slot_is_taken_again_only_once_its_client_has_gone() {
        let mut clients = Clients::default();
        let mut list = Recorded::default();
        let (a, a_fd, _a) = client();
        let (b, b_fd, _b) = client();
        assert_eq!(clients.insert(a, &mut list).unwrap(), 0);
        assert_eq!(clients.insert(b, &mut list).unwrap(), 1);
        clients.join(0, "ann".to_string());
        clients.join(1, "bob".to_string());
        // Bob is let go: nothing changes until the end of the turn.
        clients[1].shed();
        let (c, c_fd, _c) = client();
        assert_eq!(clients.insert(c, &mut list).unwrap(), 2);
        clients.end_turn(&mut list);
        // Now his slot is free, and his socket left the list first.
        let (d, d_fd, _d) = client();
        assert_eq!(clients.insert(d, &mut list).unwrap(), 1);
        let expected = [
            format!("add {a_fd} as 0"),
            format!("add {b_fd} as 1"),
            format!("add {c_fd} as 2"),
            format!("delete {b_fd}"),
            format!("add {d_fd} as 1"),
        ];
        assert_eq!(list.0, expected);
        // The newcomer in his slot is not in the chat.
        let members: Vec<_> = clients
            .members()
            .map(|client| client.name.clone())
            .collect();
        assert_eq!(members, [Some("ann".to_string())]);
        assert_eq!(clients[1].name, None);
    }
    // ANCHOR_END: slot_test

    #[test]
    fn only_the_clients_lent_out_are_looked_at_again() {
        let mut clients = Clients::default();
        let mut list = Recorded::default();
        let far: Vec<TcpStream> = (0..5)
            .map(|_| {
                let (client, _, far) = client();
                clients.insert(client, &mut list).unwrap();
                far
            })
            .collect();
        assert_eq!(clients.touched(), []);
        let _ = &clients[3]; // only looking
        clients[4].shed();
        clients[1].shed();
        clients[4].shed();
        assert_eq!(clients.touched(), [4, 1]);
        clients.end_turn(&mut list);
        assert_eq!(clients.touched(), []);
        assert_eq!(clients.iter().count(), 3);
        drop(far);
    }

    #[test]
    fn the_nearest_deadline_comes_first() {
        let mut clients = Clients::default();
        let mut list = Recorded::default();
        let (a, _, _a) = client();
        let (b, _, _b) = client();
        let first = a.deadline().unwrap();
        clients.insert(a, &mut list).unwrap();
        clients.insert(b, &mut list).unwrap();
        assert_eq!(clients.next_deadline(), Some(first));
        assert_eq!(clients.due(first), [0]);
        // Once let go, a client has no deadline any more.
        clients[0].shed();
        clients.end_turn(&mut list);
        assert!(clients.next_deadline() > Some(first));
        assert_eq!(clients.due(first), []);
    }
}
