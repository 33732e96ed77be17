//! A minimal blocking WebSocket client for load generation, and idle
//! connections that only open (see [`start_handshake`]).
//!
//! Written independently of the stages' code: it measures them, so it must
//! not share their mistakes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

/// How long a client waits for the server before it gives up: the bench
/// reports a server that stops answering instead of hanging.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Client {
    pub reader: ClientReader,
    pub writer: ClientWriter,
}

/// The half of a client that sends: it can live on another thread than the
/// half that receives.
pub struct ClientWriter {
    stream: TcpStream,
    mask_seed: u32,
}

pub struct ClientReader {
    reader: BufReader<TcpStream>,
}

/// A message as the server sent it.
pub enum Incoming {
    Text(Vec<u8>),
    Binary,
    /// A close frame, with its status code if it has one (1009: too big).
    Close(Option<u16>),
}

impl Client {
    /// Connects and performs the opening handshake.
    pub fn connect(address: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut writer = stream.try_clone()?;
        writer.write_all(handshake_request(address).as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 101") {
            return Err(io::Error::other(format!("handshake refused: {status}")));
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
        }
        Ok(Client {
            reader: ClientReader { reader },
            writer: ClientWriter {
                stream: writer,
                mask_seed: 0x9e37_79b9,
            },
        })
    }

    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.writer.send_text(text)
    }

    pub fn receive(&mut self) -> io::Result<Incoming> {
        self.reader.receive()
    }
}

impl ClientWriter {
    /// Sends one masked frame, header and payload in a single write.
    pub fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.mask_seed = self
            .mask_seed
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        let mask = self.mask_seed.to_be_bytes();
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            len if len < 126 => frame.push(0x80 | len as u8),
            len if len <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame)
    }

    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(0x1, text.as_bytes())
    }
}

impl ClientReader {
    /// Reads one whole message (reassembling fragments, skipping control frames).
    pub fn receive(&mut self) -> io::Result<Incoming> {
        let mut message = Vec::new();
        let mut message_opcode = None;
        loop {
            let mut head = [0; 2];
            self.reader.read_exact(&mut head)?;
            let fin = head[0] & 0x80 != 0;
            let opcode = head[0] & 0x0f;
            let length = match head[1] & 0x7f {
                126 => {
                    let mut bytes = [0; 2];
                    self.reader.read_exact(&mut bytes)?;
                    u16::from_be_bytes(bytes) as usize
                }
                127 => {
                    let mut bytes = [0; 8];
                    self.reader.read_exact(&mut bytes)?;
                    u64::from_be_bytes(bytes) as usize
                }
                short => short as usize,
            };
            let mut payload = vec![0; length];
            self.reader.read_exact(&mut payload)?;
            match opcode {
                0x8 => {
                    let code = payload
                        .get(..2)
                        .map(|code| u16::from_be_bytes([code[0], code[1]]));
                    return Ok(Incoming::Close(code));
                }
                0x9 | 0xA => continue,
                0x0 => message.extend_from_slice(&payload),
                _ => {
                    message_opcode = Some(opcode);
                    message = payload;
                }
            }
            if fin {
                return Ok(match message_opcode {
                    Some(0x2) => Incoming::Binary,
                    _ => Incoming::Text(message),
                });
            }
        }
    }
}

/// The opening handshake's request. Every client sends the same key: the
/// bench does not check the server's answer to it, only the status.
fn handshake_request(address: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// The first half of an idle connection: connects and sends the handshake's
/// request, without waiting for the answer, so that many connections can
/// be on their way at once. [`finish_handshake`] is the second half.
///
/// An idle connection is just its socket: one file descriptor in the bench
/// and no buffers, so that 10,000 of them cost the bench almost nothing.
///
/// It connects from `local`, a loopback address: one address has about
/// 28,000 ports to connect from (`/proc/sys/net/ipv4/ip_local_port_range`),
/// so 100,000 connections come from several.
pub fn start_handshake(local: Ipv4Addr, address: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = connect_from(local, address)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.write_all(handshake_request(address).as_bytes())?;
    Ok(stream)
}

/// Waits for the answer to [`start_handshake`]'s request: `101 Switching
/// Protocols`. A server sends nothing more before a client joins, so
/// reading past the end of the answer never takes a message away.
pub fn finish_handshake(stream: &mut TcpStream) -> io::Result<()> {
    let mut answer = Vec::new();
    let mut buffer = [0; 512];
    while !answer.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    if !answer.starts_with(b"HTTP/1.1 101") {
        let status = String::from_utf8_lossy(&answer);
        let status = status.lines().next().unwrap_or_default();
        return Err(io::Error::other(format!("handshake refused: {status}")));
    }
    Ok(())
}

/// Whether the server still holds a connection open: it has not closed it,
/// and nothing went wrong with it. Looks without waiting or taking bytes.
pub fn is_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let open = match stream.peek(&mut [0]) {
        Ok(0) => false, // the server closed it
        Ok(_) => true,  // a message for it, from a server that sends to all
        Err(error) => error.kind() == io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    open
}

/// Connects to `address` from the address `local`, on a port the system
/// chooses: `bind` before `connect`, which std's `TcpStream` cannot do.
/// `IP_BIND_ADDRESS_NO_PORT` leaves the choice of the port to `connect`,
/// which may take one that another connection of ours is still leaving
/// (`TIME_WAIT`, for a minute after it closed), where `bind` could not.
fn connect_from(local: Ipv4Addr, address: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(address) = address else {
        return Err(io::Error::other("the servers listen on IPv4"));
    };
    // SAFETY: socket takes no pointer. It returns a new descriptor, which
    // nothing else owns: the `OwnedFd` closes it, on every path.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if socket < 0 {
        return Err(io::Error::last_os_error());
    }
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(socket) });
    let fd = stream.as_raw_fd();
    let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let yes: libc::c_int = 1;
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt reads `size` bytes at the pointer: one c_int.
    let no_port = libc::IP_BIND_ADDRESS_NO_PORT;
    if unsafe { libc::setsockopt(fd, libc::IPPROTO_IP, no_port, (&raw const yes).cast(), size) }
        != 0
    {
        return Err(io::Error::last_os_error());
    }
    let from = sockaddr(SocketAddrV4::new(local, 0));
    let to = sockaddr(address);
    // SAFETY: bind and connect read `length` bytes at the pointer, a whole
    // `sockaddr_in` that lives until they return, and the socket is open.
    if unsafe { libc::bind(fd, (&raw const from).cast(), length) } != 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            error.kind(),
            format!("bind to {local}: {error}"),
        ));
    }
    if unsafe { libc::connect(fd, (&raw const to).cast(), length) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stream)
}

/// An IPv4 address and port as C's `struct sockaddr_in`, in network order.
fn sockaddr(address: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: address.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*address.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}
