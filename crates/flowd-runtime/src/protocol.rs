//! Frames between flowd and its Python processes: a 4-byte little-endian length, then a
//! [`marshal`](flowd_core::marshal)-encoded dict. File descriptors travel with SCM_RIGHTS on the
//! first byte of a frame. Frames from Python are untrusted: their size is capped before anything is
//! read, and their content is decoded strictly.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};

use flowd_core::marshal::{self, DecodeLimits, MarshalError};
use flowd_core::PyValue;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the Python process closed the connection")]
    Closed,
    #[error("the Python process did not answer within {} s", .0.as_secs())]
    NoReply(std::time::Duration),
    #[error("a frame of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("undecodable frame: {0}")]
    Undecodable(#[from] MarshalError),
    #[error("unexpected message: {0}")]
    Unexpected(String),
    #[error("I/O error talking to the Python process: {0}")]
    Io(#[from] io::Error),
}

/// Encodes a message as one frame.
pub fn encode_frame(message: &PyValue) -> Vec<u8> {
    let mut frame = vec![0u8; 4];
    marshal::encode(message, &mut frame);
    let length = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&length.to_le_bytes());
    frame
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &PyValue,
) -> io::Result<()> {
    writer.write_all(&encode_frame(message)).await?;
    writer.flush().await
}

/// Reads one frame of at most `limit` bytes and decodes it.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<PyValue, ProtocolError> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(ProtocolError::Closed)
        }
        Err(error) => return Err(error.into()),
    }
    let size = u32::from_le_bytes(header) as usize;
    if size > limit {
        return Err(ProtocolError::TooLarge { size, limit });
    }
    let mut payload = vec![0u8; size];
    match reader.read_exact(&mut payload).await {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(ProtocolError::Closed)
        }
        Err(error) => return Err(error.into()),
    }
    Ok(marshal::decode(&payload, DecodeLimits::default())?)
}

/// Sends one frame with `fds` attached (SCM_RIGHTS). The caller serialises concurrent senders.
pub async fn send_frame_with_fds(
    stream: &UnixStream,
    message: &PyValue,
    fds: &[RawFd],
) -> io::Result<()> {
    let frame = encode_frame(message);
    let mut sent = 0;
    while sent < frame.len() {
        stream.writable().await?;
        let attach_fds = sent == 0;
        let result = stream.try_io(Interest::WRITABLE, || {
            let iov = [IoSlice::new(&frame[sent..])];
            let rights = [ControlMessage::ScmRights(fds)];
            let cmsgs: &[ControlMessage] = if attach_fds && !fds.is_empty() {
                &rights
            } else {
                &[]
            };
            sendmsg::<()>(
                stream.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(io::Error::from)
        });
        match result {
            Ok(n) => sent += n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Builds a dict message from string keys.
pub fn message<const N: usize>(items: [(&str, PyValue); N]) -> PyValue {
    PyValue::Dict(
        items
            .into_iter()
            .map(|(key, value)| (PyValue::Str(key.to_string()), value))
            .collect(),
    )
}

/// Typed access to the fields of a message from Python.
pub trait MessageExt {
    fn field(&self, key: &str) -> Option<&PyValue>;
    fn str_field(&self, key: &str) -> Option<&str> {
        self.field(key).and_then(PyValue::as_str)
    }
    fn int_field(&self, key: &str) -> Option<i64> {
        match self.field(key) {
            Some(PyValue::Int(i)) => Some(*i),
            _ => None,
        }
    }
}

impl MessageExt for PyValue {
    fn field(&self, key: &str) -> Option<&PyValue> {
        self.get(key)
    }
}

pub fn str_value(text: impl Into<String>) -> PyValue {
    PyValue::Str(text.into())
}
